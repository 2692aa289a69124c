"""What canirun recommends running here: one rule, as data and pure functions.

The rule, in the order a practitioner applies it (README, "How the recommendation is
chosen"):

1. Only what runs: a runnable verdict, on a device whose runtime can run that precision
   (the capability table), with the weights fitting on disk.
2. Nothing dominated: an option is dropped when another one is at least as good in
   quality, at least as fast and no bigger. An fp32 copy of a model published in 16-bit
   has 16-bit quality (its extra bits are zeros), so it is always dominated where
   16-bit runs.
3. A runtime made for the device: llama.cpp/Ollama on the CPU and on single-user GPUs,
   vLLM on data-centre GPUs (HBM or at least 40 GiB), MLX then llama.cpp on Apple.
   Options with such a runtime are kept when there are any.
4. A usable speed, then quality (``balanced``, the default): the highest quality
   among options decoding at least ``USABLE_TPS``; when none does, the best quality
   within ``SPEED_TIE`` of the fastest option at ``FLOOR_QUALITY`` (4-bit) or better.
   An LLM without a speed estimate (no RAM bandwidth figure: ``--ram-bandwidth off``)
   is still decoded by reading its weights and KV cache for every token, so the same rule
   runs on the bytes each option reads per token: the best quality within ``SPEED_TIE`` of
   the lightest option at 4-bit or better. Other models without a speed estimate
   (diffusion, speech, vision...) go by placement (GPU before GPU+RAM before CPU), then
   runtime, then quality.

``prefer="quality"`` takes the highest quality that runs whatever its speed;
``prefer="speed"`` the fastest at 4-bit quality or better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from canirun.catalog.schema import Gpu as GpuSpec
from canirun.catalog.schema import Model
from canirun.estimate import precision as prec
from canirun.estimate.capacity import Capacity, GpuSlot, match_gpu_spec
from canirun.estimate.memo import ByIdentity
from canirun.estimate.need import DECODERS
from canirun.estimate.results import RUNNABLE, Choice, Result, rank

Prefer = Literal["balanced", "quality", "speed"]
DeviceClass = Literal["cpu", "desktop-gpu", "datacentre-gpu", "apple", "unified"]

# A decode speed a person can read along with: canirun's policy, stated in the README.
USABLE_TPS = 10.0
# Below 4 bits llama.cpp's perplexity table shows quality falling fast: the floor
# for "the fastest option" is Q4_0 (quality rank 35) or better.
FLOOR_QUALITY = prec.PRECISIONS["Q4_0"].quality
# Options this close to the fastest count as equally fast.
SPEED_TIE = 0.15
# A GPU with at least this much memory, or HBM, is a serving GPU.
DATACENTRE_MEMORY = 40 * 2**30
SIXTEEN_BIT = prec.PRECISIONS["bf16"].quality

# Runtimes made for each class of device, best first. Policy, not fact; the README
# explains it. A model's candidates keep to these where any of them runs it.
PREFERRED: dict[DeviceClass, tuple[str, ...]] = {
    "cpu": ("llama.cpp", "ollama", "whisper.cpp", "text-generation-webui"),
    "desktop-gpu": (
        "llama.cpp",
        "ollama",
        "text-generation-webui",
        "whisper.cpp",
        "comfyui",
        "diffusers",
        "automatic1111",
        "vllm",
    ),
    "datacentre-gpu": ("vllm", "tgi", "transformers", "diffusers", "comfyui", "alphafold3"),
    "apple": ("mlx", "llama.cpp", "ollama", "whisper.cpp", "comfyui", "diffusers"),
    "unified": ("llama.cpp", "ollama", "vllm", "whisper.cpp", "comfyui", "diffusers"),
}


def slot_class(slot: GpuSlot, specs: Sequence[GpuSpec] = ()) -> DeviceClass:
    if slot.vendor == "apple":
        return "apple"
    if slot.unified:
        return "unified"
    spec = match_gpu_spec(slot.name, tuple(specs))
    hbm = spec is not None and (spec.memory_type or "").upper().startswith("HBM")
    big = (slot.total_bytes or 0) >= DATACENTRE_MEMORY
    return "datacentre-gpu" if hbm or big else "desktop-gpu"


def device_class(
    verdict: str, gpus: Sequence[int], cap: Capacity, specs: Sequence[GpuSpec] = ()
) -> DeviceClass:
    """The class of device a placement runs on: the CPU, or its (first) GPU."""
    if verdict == "cpu":
        return "cpu"
    specs = tuple(specs)
    key = (id(cap), id(specs), tuple(gpus))
    hit = _CLASSES.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _CLASSES.keep(key, (cap, specs), _device_class(gpus, cap, specs))


# The same GPUs of the same machine for every option of a scan: classed once.
_CLASSES: ByIdentity[DeviceClass] = ByIdentity(1024)


def _device_class(gpus: Sequence[int], cap: Capacity, specs: Sequence[GpuSpec]) -> DeviceClass:
    slots = [s for s in cap.gpus if s.index in gpus] or list(cap.gpus[:1])
    return slot_class(slots[0], specs) if slots else "cpu"


def runtime_rank(framework: str | None, cls: DeviceClass) -> int:
    order = PREFERRED[cls]
    return order.index(framework) if framework in order else len(order)


def quality(r: Result, model: Model) -> int:
    """Quality rank, with fp32 capped at 16-bit for a model published in 16-bit."""
    p = prec.PRECISIONS.get(r.precision or "")
    if p is None:
        return 0
    if p.name == "fp32" and model.native_dtype != "fp32":
        return SIXTEEN_BIT
    return p.quality


def _tps(r: Result) -> float | None:
    return r.tokens_per_second.tokens_per_second if r.tokens_per_second else None


def _size(r: Result) -> int:
    return r.memory.total_bytes if r.memory and r.memory.total_bytes else 2**62


def _read_per_token(r: Result) -> int | None:
    """The bytes an LLM's decode reads per token, as the speed model counts them (weights
    and KV cache at the full context); None without both figures."""
    m = r.memory
    if m is None or m.weights_bytes is None or m.kv_cache_bytes is None:
        return None
    return m.weights_bytes + m.kv_cache_bytes


class _Option(msgspec.Struct, frozen=True):
    result: Result
    quality: int
    tps: float | None
    cls: DeviceClass
    native: bool = False  # the dtype the weights are published in
    # Worked out once: _dominates compares every pair of options.
    size: int = 0  # _size(result)
    verdict_rank: int = 0  # rank(result.verdict)
    reads: int | None = None  # an LLM's bytes read per token (_read_per_token)

    @property
    def fit(self) -> int:
        return runtime_rank(self.result.framework, self.cls)

    @property
    def name(self) -> str:
        return f"{self.result.precision} with {self.result.framework}"


def _dominates(a: _Option, b: _Option) -> bool:
    if a.quality < b.quality or a.size > b.size:
        return False
    faster = (
        a.tps >= b.tps
        if a.tps is not None and b.tps is not None
        else a.verdict_rank <= b.verdict_rank
    )
    strictly = (
        a.quality > b.quality
        or a.size < b.size
        or (a.tps or 0) > (b.tps or 0)
        or a.verdict_rank < b.verdict_rank
    )
    return faster and strictly


class Recommendation(msgspec.Struct, frozen=True):
    result: Result
    why: tuple[str, ...]
    best_quality: Result | None


def recommend(
    results: Sequence[Result],
    model: Model,
    cap: Capacity,
    specs: Sequence[GpuSpec] = (),
    prefer: Prefer = "balanced",
) -> Recommendation | None:
    """The option to run here, with the reasons; None when nothing runs."""
    runnable = [r for r in results if r.verdict in RUNNABLE]
    on_disk = [r for r in runnable if r.disk_fits is not False]
    why: list[str] = []
    if runnable and not on_disk:
        why.append("no option fits on the disk; the weights need more free space")
    pool = on_disk or runnable
    if not pool:
        return None
    options = [
        _Option(
            r,
            quality(r, model),
            _tps(r),
            device_class(r.verdict, r.gpus, cap, specs),
            (r.precision or "").lower() == model.native_dtype,
            _size(r),
            rank(r.verdict),
            _read_per_token(r) if model.kind in DECODERS else None,
        )
        for r in pool
    ]
    best_q = max(options, key=lambda o: (o.quality, -rank(o.result.verdict), o.tps or 0, -o.fit))
    made_for = [o for o in options if o.fit < len(PREFERRED[o.cls])]
    if made_for and len(made_for) < len(options):
        why.append(
            "runtimes made for the device first: "
            + ", ".join(sorted({f"{o.result.framework} ({o.cls})" for o in made_for}))
        )
    pool_opts = made_for or options
    kept = [o for o in pool_opts if not any(_dominates(x, o) for x in pool_opts if x is not o)]
    why += _dropped_fp32(pool_opts, kept, model)
    chosen, how = _choose(kept, prefer)
    why.insert(0, how)
    why += _left_off_disk(runnable, quality(chosen.result, model), model)
    return Recommendation(chosen.result, tuple(why), best_q.result)


def _left_off_disk(runnable: list[Result], chosen_quality: int, model: Model) -> list[str]:
    """Better options that would run but whose weights do not fit on the disk."""
    better = [r for r in runnable if r.disk_fits is False and quality(r, model) > chosen_quality]
    if not better:
        return []
    top = max(better, key=lambda r: quality(r, model))
    disk = next((x for x in top.reasons if "of disk" in x), "not enough free disk")
    return [f"{top.precision} with {top.framework} would run ({top.verdict}) but {disk}"]


def _dropped_fp32(options: list[_Option], kept: list[_Option], model: Model) -> list[str]:
    # fp32 first: `not in` compares whole results, the precision test is cheap.
    gone = [o for o in options if o.result.precision == "fp32" and o not in kept]
    if not gone or model.native_dtype == "fp32":
        return []
    published = model.native_dtype or "16-bit"
    return [f"fp32 left out: the weights are published in {published}; fp32 doubles them"]


def _choose(options: list[_Option], prefer: Prefer) -> tuple[_Option, str]:
    timed = [o for o in options if o.tps is not None]
    if not timed and prefer != "quality" and all(o.reads for o in options):
        return _by_bytes_read(options, prefer)
    if not timed:
        best = min(options, key=lambda o: (rank(o.result.verdict), o.fit, -o.quality, not o.native))
        return best, f"{best.name}: the best placement ({best.result.verdict}), then runtime"
    if prefer == "quality":
        best = max(
            options, key=lambda o: (o.quality, o.native, -rank(o.result.verdict), o.tps or 0)
        )
        return best, f"{best.name}: the highest quality that runs (--prefer quality)"
    floor = [o for o in timed if o.quality >= FLOOR_QUALITY] or timed
    if prefer == "speed":
        best = max(floor, key=lambda o: (o.tps or 0, o.quality))
        return best, f"{best.name}: the fastest at 4-bit quality or better (--prefer speed)"
    usable = [o for o in timed if (o.tps or 0) >= USABLE_TPS]
    if usable:
        best = max(usable, key=lambda o: (o.quality, o.native, -o.fit, o.tps or 0))
        return best, (
            f"{best.name}: the highest quality at {USABLE_TPS:g} tok/s or more ({best.tps:g} tok/s)"
        )
    fastest = max(o.tps or 0 for o in floor)
    near = [o for o in floor if (o.tps or 0) >= fastest * (1 - SPEED_TIE)]
    best = max(near, key=lambda o: (o.quality, o.native, -o.fit, o.tps or 0))
    if (best.tps or 0) >= fastest:
        how = "the fastest at 4-bit quality or better"
    else:
        how = (
            f"the best quality within {SPEED_TIE:.0%} of the fastest at 4-bit or better "
            f"({best.tps:g} vs {fastest:g} tok/s)"
        )
    return best, f"{best.name}: nothing reaches {USABLE_TPS:g} tok/s here; {how}"


def _by_bytes_read(options: list[_Option], prefer: Prefer) -> tuple[_Option, str]:
    """Rule 4 for an LLM whose speed is unknown here: decode time follows the bytes read
    per token, so the lightest option is the fastest whatever the bandwidth. Only the
    best placement's options compete (a CPU row is not weighed against a GPU row)."""
    top = min(o.verdict_rank for o in options)
    same = [o for o in options if o.verdict_rank == top]
    floor = [o for o in same if o.quality >= FLOOR_QUALITY] or same
    lightest = min(o.reads or 0 for o in floor)
    unknown = "no decode speed here (no bandwidth figure); by the bytes read per token"
    if prefer == "speed":
        best = min(floor, key=lambda o: (o.reads or 0, -o.quality, o.fit))
        return best, f"{best.name}: {unknown}, the lightest at 4-bit or better (--prefer speed)"
    near = [o for o in floor if (o.reads or 0) * (1 - SPEED_TIE) <= lightest]
    best = max(near, key=lambda o: (o.quality, o.native, -o.fit, -(o.reads or 0)))
    how = (
        "the lightest at 4-bit or better"
        if (best.reads or 0) <= lightest
        else f"the best quality within {SPEED_TIE:.0%} of the lightest at 4-bit or better"
    )
    return best, f"{best.name}: {unknown}, {how}"


def as_choice(r: Result | None) -> Choice | None:
    if r is None:
        return None
    return Choice(r.verdict, r.precision, r.framework, _tps(r))
