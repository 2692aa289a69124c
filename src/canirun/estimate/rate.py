"""Rate catalog variants for one machine: every precision, the best framework for each.

``rate_variant`` returns one ``Result`` per precision evaluated; ``summarize``
picks the best way to run the variant here (best verdict, then the
highest-quality precision, installed frameworks first) and the largest
context that still fits that way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args

import msgspec

from canirun.catalog.loader import Catalog, VariantRef
from canirun.catalog.schema import Arch, CpuArch, Framework, Lifecycle, Model, Os, Requirement
from canirun.catalog.schema import Gpu as GpuSpec
from canirun.estimate import mlx
from canirun.estimate import precision as prec
from canirun.estimate.capacity import Capacity
from canirun.estimate.context_search import Probe, largest_kept
from canirun.estimate.faster import faster_option
from canirun.estimate.gguf import seed_layouts
from canirun.estimate.memo import ByIdentity
from canirun.estimate.multinode_rate import across_nodes
from canirun.estimate.need import DECODERS, build_need
from canirun.estimate.params import active_decoder_params
from canirun.estimate.placement import (
    Need,
    Placement,
    a_gpu_of,
    any_usable_gpu,
    can_run,
    largest_layer,
    place,
    ram_budget,
)
from canirun.estimate.recommend import (
    PREFERRED,
    as_choice,
    device_class,
    recommend,
    runtime_rank,
)
from canirun.estimate.results import (
    RUNNABLE,
    MemoryEstimate,
    Parallel,
    Result,
    Summary,
    Verdict,
    Workload,
    rank,
)
from canirun.estimate.speed import (
    CpuWork,
    attention_cycles,
    cpu_isa,
    decode_cycles,
    decode_speed,
    prefill_flops_per_token,
    with_prefill,
)
from canirun.estimate.weights import Weights, weights
from canirun.records import evolve
from canirun.units import format_bytes, format_gib, parse_size

KIND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "llm": prec.GGUF_SCAN + prec.TORCH_SCAN + tuple(sorted(prec.MXFP4_ONLY)) + prec.MLX_SCAN,
    "vlm": prec.GGUF_SCAN + prec.TORCH_SCAN,
    "diffusion": ("fp32", "fp16", "bf16", "fp8"),
    "speech": ("fp32", "fp16", "F16", "Q8_0"),
    "vision": ("fp32", "fp16", "bf16"),
    "embedding": ("fp32", "fp16", "bf16", "int8"),
    "protein": ("fp32",),
}


# llama.cpp's CPU backend repacks these types into a second buffer at load
# (measured: CPU_REPACK buffers for Q4_0 and Q4_K_M; tests/reference/llamacpp-measured.toml).
REPACKED = frozenset({"Q4_0", "Q4_K_S", "Q4_K_M"})
REPACK_NOTE = (
    "llama.cpp repacks these weights for the CPU at load: with mmap on, resident memory also "
    "shows the mapped file (reclaimable page cache), up to about twice the file"
)


class Options(msgspec.Struct, frozen=True):
    workload: Workload = msgspec.field(default_factory=Workload)
    precisions: tuple[str, ...] | None = None  # only these (canonical names)
    framework: str | None = None  # only this framework id
    prefer: str = "balanced"  # the recommendation's emphasis: balanced, quality, speed


# The default options, built once (a frozen record: sharing it is safe).
DEFAULT_OPTIONS = Options()


class _Eval(msgspec.Struct, frozen=True):
    """One precision on one framework: the need, where it goes, and the weights."""

    framework: Framework
    precision: prec.Precision
    weights: Weights
    need: Need
    placement: Placement
    kv_type: str


def _base(ref: VariantRef) -> dict[str, Any]:
    m, v = ref.model, ref.variant
    return {
        "model_id": ref.id,
        "name": v.name,
        "family": m.family,
        "category": m.category,
        "kind": m.kind,
        "task": m.task,
        "access": m.access,
        "variant": v.key,
        "params": v.params.total if v.params else None,
        "active_params": v.active_params,
        "native_context": v.arch.max_context if v.arch else None,
        "extended_context": v.arch.extended_context if v.arch else None,
    }


def _sources(m: Model, variant_key: str | None = None) -> tuple[str, ...]:
    """URLs behind the figures used: the variant's own blocks and the model-wide ones."""
    return _SOURCES.get((m,), variant_key, lambda: _find_sources(m, variant_key))


# Every result of a variant cites the same sources: looked up once per variant.
_SOURCES: ByIdentity[tuple[str, ...]] = ByIdentity()
_FIGURES: ByIdentity[tuple[tuple[str, Any], ...]] = ByIdentity(1024)


def _find_sources(m: Model, variant_key: str | None) -> tuple[str, ...]:
    refs = []
    key = (id(m),)
    hit = _FIGURES.entries.get(key)  # one model's figures, read for each of its variants
    figures = hit[1] if hit is not None else _FIGURES.keep(key, (m,), tuple(m.figures()))
    own = f"variant {variant_key!r}"
    for where, figure in figures:
        if where.endswith(" ollama"):
            continue  # Ollama tags name the model; no estimate uses them
        if variant_key is None or not where.startswith("variant ") or where.startswith(own):
            refs.append(figure.source)
    urls = [m.sources.get(r, r) for r in refs]
    return tuple(dict.fromkeys(u for u in urls if u.startswith("http"))) or tuple(
        dict.fromkeys(m.sources.values())
    )


def _blocked(ref: VariantRef, cap: Capacity) -> Result | None:
    """API-only, unreleased, or a hard requirement this machine lacks."""
    m = ref.model

    def blocked(verdict: Verdict, reasons: tuple[str, ...], access: str | None = None) -> Result:
        base = _base(ref)
        if access is not None:
            base["access"] = access
        return Result(
            **base,
            precision=None,
            format=None,
            context_tokens=None,
            sources=_sources(m, ref.variant.key),
            verdict=verdict,
            reasons=reasons,
        )

    life = ref.variant.lifecycle or m.lifecycle
    if life is not None and life.status == "retired":
        return blocked("unsupported", _retired(m, life), access="retired")
    if m.access == "api-only" and m.api is not None:
        hosts = ", ".join(m.api.hosts)
        why: tuple[str, ...] = (
            f"weights are not published: use it through {m.api.provider}'s API ({hosts})",
        )
        if life is not None:
            successor = f"; successor: {life.successor}" if life.successor else ""
            why += (f"deprecated: to be withdrawn on {life.date}{successor}",)
        return blocked("api-only", why + _note(m))
    if m.access == "unreleased":
        return blocked("unsupported", _note(m))
    needs = m.needs
    if needs is None:
        return None
    missing = []
    if needs.gpu_vendor and not any(g.vendor in needs.gpu_vendor for g in cap.gpus):
        missing.append(f"needs {a_gpu_of(needs.gpu_vendor)}; none here")
    if needs.os and cap.os is not None and cap.os not in needs.os:
        missing.append(f"runs on {', '.join(needs.os)} only; this is {cap.os}")
    if needs.docker and cap.docker is False:
        missing.append("needs Docker, which is not usable here")
    if missing:
        return blocked("unsupported", tuple(missing))
    return None


def model_doubts(ref: VariantRef, cap: Capacity) -> tuple[str, ...]:
    """A model's hard requirement this machine may or may not meet (unknown OS or Docker)."""
    needs = ref.model.needs
    if needs is None:
        return ()
    from canirun.estimate.frameworks import platform_doubts

    os = list(needs.os) if needs.os else list(get_args(Os))
    return platform_doubts(ref.model.name, os, list(get_args(CpuArch)), bool(needs.docker), cap)


def _unknown_if(placement: Placement, doubts: tuple[str, ...]) -> Placement:
    """A fit that rests on something unknown (the OS, Docker, ...) is not a fit."""
    if not doubts or placement.verdict not in RUNNABLE:
        return placement
    return Placement("unknown", reasons=lambda: (*doubts, *placement.reasons))


def _retired(m: Model, life: Lifecycle) -> tuple[str, ...]:
    """Why a withdrawn model runs nowhere: when, and what the vendor offers instead."""
    where = f" from {m.api.provider}'s API" if m.api is not None else ""
    gone = "neither downloadable nor served" if m.access == "retired" else "weights never published"
    line = f"retired{where} on {life.date}: {gone}"
    if life.successor:
        line += f"; the vendor's successor: {life.successor}"
    source = m.sources.get(life.source, life.source)
    checked = f", checked {life.checked}" if life.checked else ""
    return (f"{line} ({source}{checked})", *_note(m))


def _note(m: Model) -> tuple[str, ...]:
    return (m.access_note,) if m.access_note else ()


def frameworks_for(
    ref: VariantRef, catalog: Catalog, cap: Capacity
) -> tuple[list[Framework], list[str]]:
    """The model's local frameworks that can run on this OS, CPU and container setup."""
    ok, why_not = [], []
    for fid in (*ref.model.frameworks, *_implementing(ref, catalog)):
        fw = catalog.framework_by_id.get(fid)
        if fw is None or not fw.local or ref.model.kind not in fw.serves:
            continue
        if cap.os is not None and cap.os not in fw.os:
            why_not.append(f"{fw.name}: not available on {cap.os}")
        elif cap.arch is not None and cap.arch not in fw.arch:
            why_not.append(f"{fw.name}: not available for {cap.arch}")
        elif fw.needs_docker and cap.docker is False:
            why_not.append(f"{fw.name}: needs Docker, not usable here")
        else:
            ok.append(fw)
    return ok, why_not


def _implementing(ref: VariantRef, catalog: Catalog) -> list[str]:
    """Frameworks that implement this variant's architecture themselves (mlx-lm's
    models/ folder, as data), beyond the model's own list."""
    arch = ref.variant.arch
    name = arch.gguf_arch if arch is not None else None
    if name is None:
        return []
    return [
        f.id
        for f in catalog.frameworks
        if f.implements is not None
        and name in f.implements.archs
        and f.id not in ref.model.frameworks
    ]


def _supports(fw: Framework, p: prec.Precision, kind: str) -> bool:
    if fw.precisions:
        return p.name in fw.precision_names
    return p.name in KIND_PRECISIONS.get(kind, ())


def precisions_for(
    ref: VariantRef, frameworks: Iterable[Framework], only: tuple[str, ...] | None
) -> list[prec.Precision]:
    """The precisions to rate ``ref`` at with these frameworks, best quality first."""
    kind = ref.model.kind
    arch = ref.variant.arch
    ggml_ok = (arch is not None and arch.gguf_arch is not None) or "gguf" in ref.model.formats
    mxfp4_ok = arch is not None and arch.experts_mxfp4
    fws = tuple(frameworks)
    # The answer depends only on these, and most variants share them with many others.
    wanted = (kind, bool(ggml_ok), bool(mxfp4_ok), only)
    return list(_PRECISIONS.get(fws, wanted, lambda: _precisions(fws, *wanted)))


_PRECISIONS: ByIdentity[tuple[prec.Precision, ...]] = ByIdentity(1024)


def _precisions(
    fws: tuple[Framework, ...],
    kind: str,
    ggml_ok: bool,
    mxfp4_ok: bool,
    only: tuple[str, ...] | None,
) -> tuple[prec.Precision, ...]:
    out = []
    for name in only or KIND_PRECISIONS.get(kind, ()):
        p = prec.PRECISIONS.get(name)
        if p is None or (p.family == "ggml" and kind in DECODERS and not ggml_ok):
            continue
        if name in prec.MXFP4_ONLY and not mxfp4_ok:
            continue
        if any(_supports(fw, p, kind) for fw in fws):
            out.append(p)
    return tuple(sorted(out, key=lambda p: -p.quality))


class _Facts(msgspec.Struct, frozen=True):
    """What every precision of one variant shares on this machine: worked out once per
    variant, not once per precision and framework."""

    base: dict[str, Any]  # _base(ref)
    leading: tuple[Any, ...]  # base's values of Result's first fields (model_id ... params)
    trailing: tuple[Any, ...]  # and of active_params, native_context, extended_context
    sources: tuple[str, ...]
    doubts: dict[str, tuple[str, ...]]  # by framework id: the model's and the framework's
    decoder: bool  # a text decoder with an architecture (speed, context, layers)
    prefill_flops: int  # per token over the workload's context (decoders)
    disk_extra: Requirement | None  # the smallest disk need besides the weights
    contexts: dict[str, tuple[int | None, str | None]]  # by framework id: runtime_context
    gpu_capable: dict[str, bool]  # by framework id: any_usable_gpu


def _doubts(ref: VariantRef, fws: list[Framework], cap: Capacity) -> dict[str, tuple[str, ...]]:
    """By framework id: what cannot be told about running the variant with it here."""
    of_model = model_doubts(ref, cap)
    return {fw.id: of_model + framework_doubts(fw, cap) for fw in fws}


def _facts(ref: VariantRef, fws: list[Framework], cap: Capacity, opts: Options) -> _Facts:
    m, arch, wl = ref.model, ref.variant.arch, opts.workload
    decoder = m.kind in DECODERS and arch is not None
    flops = contexts = None
    if decoder and arch is not None:
        flops = prefill_flops_per_token(
            active_decoder_params(arch),
            arch.layers,
            arch.heads * arch.effective_head_dim,
            wl.context_tokens,
        )
        contexts = {fw.id: runtime_context(fw, arch, cap, wl) for fw in fws}
    disk = [r for r in ref.variant.requirements if r.resource == "disk"]
    base = _base(ref)
    return _Facts(
        base=base,
        leading=tuple(base[k] for k in _LEADING),
        trailing=tuple(base[k] for k in _TRAILING),
        sources=_sources(m, ref.variant.key),
        doubts=_doubts(ref, fws, cap),
        decoder=decoder,
        prefill_flops=flops or 0,
        disk_extra=min(disk, key=lambda r: r.amount_bytes, default=None),
        contexts=contexts or {},
        gpu_capable={fw.id: any_usable_gpu(cap, fw) for fw in fws},
    )


def _evaluate(
    ref: VariantRef,
    fws: list[Framework],
    p: prec.Precision,
    cap: Capacity,
    opts: Options,
    known: Weights | None = None,
    doubts: dict[str, tuple[str, ...]] | None = None,
) -> list[_Eval]:
    """Each framework's need and placement; ``known``: weights read from a file;
    ``doubts``: ``_doubts(ref, fws, cap)``, when the caller has it."""
    w = known or weights(ref.model, ref.variant, p)
    if w is None:
        return []
    doubts = doubts or _doubts(ref, fws, cap)
    out = []
    kind, wl, backends = ref.model.kind, opts.workload, cap.backends
    for fw in fws:
        if not _supports(fw, p, kind):
            continue
        need, kv_type = build_need(ref, fw, p, w, wl, backends)
        placed = place(need, cap, fw)
        doubt = doubts[fw.id]
        if doubt:
            placed = _unknown_if(placed, doubt)
        out.append(_Eval(fw, p, w, need, placed, kv_type))
    return out


def framework_doubts(fw: Framework, cap: Capacity) -> tuple[str, ...]:
    """What cannot be told about running ``fw`` here: the same for every model of a scan."""
    key = (id(fw), id(cap))
    hit = _DOUBTS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _DOUBTS.keep(key, (fw, cap), _framework_doubts(fw, cap))


_DOUBTS: ByIdentity[tuple[str, ...]] = ByIdentity(1024)


def _framework_doubts(fw: Framework, cap: Capacity) -> tuple[str, ...]:
    from canirun.estimate.frameworks import platform_doubts

    return platform_doubts(fw.name, list(fw.os), list(fw.arch), fw.needs_docker, cap)


def _pick(
    evals: list[_Eval], cap: Capacity, order: list[str], specs: tuple[GpuSpec, ...] = ()
) -> _Eval:
    """Best verdict; then a runtime made for that device (recommend.PREFERRED); then
    installed frameworks; then the preference order; then the smaller need; then
    catalog order."""

    def key(e: _Eval) -> tuple[bool, bool, int, int, int]:
        o = e.need.overheads
        need = e.need.weights + e.need.kv + o.gpu_compute + o.gpu_per_device + o.cpu_process
        cls = device_class(e.placement.verdict, e.placement.gpus, cap, specs)
        fit = runtime_rank(e.framework.id, cls)
        return (
            fit >= len(PREFERRED[cls]),
            e.framework.id not in cap.installed,
            fit,
            need,
            order.index(e.framework.id),
        )

    # The verdict first: the rest of the key is worked out only among the best verdicts
    # (min keeps the first of equals, so the order of evals still breaks the last ties).
    best = min(rank(e.placement.verdict) for e in evals)
    tied = [e for e in evals if rank(e.placement.verdict) == best]
    return tied[0] if len(tied) == 1 else min(tied, key=key)


# How many times each place's terms count, by placement (read only).
_IN_RAM = {"cpu-compute": 1, "process": 1, "cpu-backend": 1}
_OFFLOADED = {"gpu-device": 1, "gpu-compute": 1, "cpu-compute": 1, "cpu-pinned": 1, "process": 1}
_ON_ONE_GPU = {"gpu-device": 1, "gpu-compute": 1}


def _memory(e: _Eval, gpu_capable: bool) -> MemoryEstimate:
    """The breakdown for this verdict's placement; for a verdict that places nothing,
    the need on one GPU where the framework could use one here, else in RAM. Every
    amount the total counts has its line, and no line is left out of the total."""
    over = e.need.overheads
    pl = e.placement
    unplaced = pl.verdict not in RUNNABLE
    counts: dict[str, int]
    if pl.verdict == "cpu" or (unplaced and not gpu_capable):
        counts = _IN_RAM
    elif pl.verdict == "offload":
        counts = _OFFLOADED
    else:
        n = max(1, len(pl.gpus))
        counts = _ON_ONE_GPU if n == 1 else {"gpu-device": n, "gpu-compute": n}
    lines = [f"weights: {format_bytes(e.weights.bytes)}, {e.weights.how}"]
    if e.weights.source:
        lines[0] += f" ({e.weights.source})"
    if e.need.kv:
        lines.append(f"KV cache: {format_bytes(e.need.kv)} ({e.kv_type})")
    overhead = 0
    for term in over.terms:
        times = counts.get(term.where, 0)
        if times:
            overhead += term.bytes * times
            lines.append(term.text + (f", x {times} GPUs" if times > 1 else ""))
    if "gpu-device" in counts:
        lines += list(over.lines)
    if "process" not in counts:
        lines.append(
            f"besides, in RAM (not in this GPU total): the process itself, "
            f"{format_bytes(over.cpu_process)}"
        )
    total = e.weights.bytes + e.need.kv + overhead
    # Positionally (one per result): weights, KV cache, overhead, total, GPU, RAM, lines.
    return MemoryEstimate(
        e.weights.bytes, e.need.kv, overhead, total, pl.gpu_bytes, pl.ram_bytes, tuple(lines)
    )


def _disk(
    w: Weights, cap: Capacity, extra: Requirement | None
) -> tuple[int, bool | None, list[str]]:
    need = w.bytes + (extra.amount_bytes if extra else 0)
    lines = []
    if extra is not None:
        lines.append(f"disk: {extra.amount} besides the weights ({extra.condition or 'data'})")
    if cap.disk_free_bytes is None:
        return need, None, [*lines, "free disk space unknown: whether the files fit is not checked"]
    fits = need <= cap.disk_free_bytes
    if not fits:
        lines.append(
            f"needs {format_gib(need)} of disk; "
            f"{format_gib(cap.disk_free_bytes)} free in {cap.disk_path}"
        )
    return need, fits, lines


def _cpu_work(e: _Eval, arch: Arch | None, cap: Capacity, context: int) -> CpuWork | None:
    """llama.cpp's CPU work per token at the end of the context, for a GGUF file; None for
    other runtimes (their CPU decode stays memory-bound)."""
    isa = cpu_isa(cap.arch)
    if e.precision.family != "ggml" or arch is None or not arch.gguf_arch or isa is None:
        return None
    if e.placement.verdict not in ("cpu", "offload"):
        return None  # the CPU computes nothing per token
    return CpuWork(
        decode_cycles(arch, arch.gguf_arch, e.precision.name, isa),
        attention_cycles(arch, min(context, arch.max_context)),
        arch.layers,
    )


def _result(
    ref: VariantRef,
    e: _Eval,
    cap: Capacity,
    opts: Options,
    frameworks: list[str],
    facts: _Facts | None = None,
) -> Result:
    facts = facts or _facts(ref, [e.framework], cap, opts)
    m, arch = ref.model, ref.variant.arch
    wl = opts.workload
    disk, disk_fits, disk_lines = _disk(e.weights, cap, facts.disk_extra)
    speed = None
    if m.kind in DECODERS:
        active = round(e.weights.bytes * e.weights.active_fraction)
        work = _cpu_work(e, arch, cap, wl.context_tokens)
        speed = decode_speed(e.placement, cap, active, e.need.kv, work)
        if arch is not None:
            cpu_gguf = e.precision.family == "ggml" and cpu_isa(cap.arch) is not None
            gguf_type = e.precision.name if cpu_gguf else None
            speed = with_prefill(
                speed, e.placement, cap, facts.prefill_flops, wl.context_tokens, gguf_type
            )
    reasons = list(e.placement.reasons)
    if e.weights.rejected:
        reasons.append(e.weights.rejected)
    if e.precision.name in REPACKED and e.placement.verdict in ("cpu", "offload"):
        reasons.append(REPACK_NOTE)
    if mlx.uses_mlx(e.framework) and e.placement.verdict == "gpu":
        slot = next((g for g in cap.gpus if g.index in e.placement.gpus), None)
        warning = mlx.wired_warning(e.weights.bytes, slot.free_bytes if slot else None)
        reasons += [warning] if warning else []
    reasons += disk_lines
    default_ctx = None
    if facts.decoder:
        default_ctx, ctx_line = facts.contexts[e.framework.id]
        if ctx_line:
            reasons.append(ctx_line)
    ggml = e.precision.family == "ggml"
    # Positionally, in Result's field order (RESULT_FIELDS, checked by a test): a scan
    # builds one per precision, and keywords cost a third of the call.
    return Result(  # type: ignore[call-arg]  # mypy cannot count the starred tuples
        *facts.leading,  # model_id ... params
        e.precision.name,
        ("gguf" if m.kind in DECODERS else "ggml") if ggml else "safetensors",
        wl.context_tokens if m.kind in DECODERS else None,
        e.placement.verdict,
        _memory(e, facts.gpu_capable[e.framework.id]),
        e.framework.id,
        tuple(frameworks),
        e.placement.gpu_layers,
        arch.layers if facts.decoder and arch is not None else None,
        _indices(e.placement.gpus),
        e.placement.headroom_bytes,
        disk,
        disk_fits,
        speed,
        tuple(reasons),
        facts.sources,
        e.weights.estimate,
        *facts.trailing,  # active_params, native_context, extended_context
        default_ctx,
        _parallel(e.placement),
    )


# The order _result passes Result's fields in; _base's keys are the leading and trailing
# ones (tests/test_records.py holds the three equal to Result's fields).
RESULT_FIELDS = (
    "model_id",
    "name",
    "family",
    "category",
    "kind",
    "task",
    "access",
    "variant",
    "params",
    "precision",
    "format",
    "context_tokens",
    "verdict",
    "memory",
    "framework",
    "frameworks",
    "gpu_layers",
    "total_layers",
    "gpus",
    "headroom_bytes",
    "disk_bytes",
    "disk_fits",
    "tokens_per_second",
    "reasons",
    "sources",
    "estimate",
    "active_params",
    "native_context",
    "extended_context",
    "runtime_default_context",
    "parallel",
)
_LEADING = RESULT_FIELDS[:9]
_TRAILING = RESULT_FIELDS[26:29]


def _indices(gpus: tuple[int, ...]) -> tuple[int, ...]:
    """The placement's GPU indices, without the unindexed ones (most have none)."""
    return gpus if None not in gpus else tuple(i for i in gpus if i is not None)


def _parallel(pl: Placement) -> Parallel | None:
    if pl.verdict == "multi-gpu" and pl.split == "tensor-parallel":
        return Parallel(tensor=len(pl.gpus))
    return None


def effective_workload(ref: VariantRef, wl: Workload) -> tuple[Workload, tuple[str, ...]]:
    """The workload for this variant: the context never exceeds the model's maximum.

    The maximum is the native (trained) context; the rope-scaled one the model card
    documents counts only when the user asks for it (--extended-context).
    """
    arch = ref.variant.arch
    if arch is None:
        return wl, ()
    extended = arch.extended_context if wl.extended_context else None
    limit = extended or arch.max_context
    if wl.context_tokens > limit:
        what = "extended" if extended else "native"
        note = [
            f"context {wl.context_tokens:,} exceeds the model's {what} maximum: "
            f"rated at {limit:,} tokens"
        ]
        if arch.extended_context and not extended:
            note.append(
                f"{arch.extended_how or 'rope scaling'} extends it to "
                f"{arch.extended_context:,}: pass --extended-context to rate that"
            )
        return evolve(wl, context_tokens=limit), tuple(note)
    if extended and wl.context_tokens > arch.max_context:
        how = arch.extended_how or "rope scaling"
        return wl, (f"beyond the native {arch.max_context:,} tokens: needs {how}",)
    return wl, ()


def runtime_context(
    fw: Framework, arch: Arch, cap: Capacity, wl: Workload
) -> tuple[int | None, str | None]:
    """The context ``fw`` allocates for this model when none is set, and a line when it
    is larger than the context rated (the runtime would then need more memory)."""
    rule = fw.default_context
    if rule is None:
        return None, None
    tokens = rule.tokens
    if rule.model_max:
        tokens = arch.max_context
    if rule.by_vram:
        vram = sum(g.total_bytes or 0 for g in cap.gpus)
        tiers = sorted((parse_size(k), v) for k, v in rule.by_vram.items())
        tokens = next((t for floor, t in reversed(tiers) if vram >= floor), tiers[0][1])
    if tokens is None:
        return None, None
    tokens = min(tokens, arch.max_context)
    if tokens <= wl.context_tokens:
        return tokens, None
    line = (
        f"{fw.name} allocates {tokens:,} tokens of context by default "
        f"({rule.note or 'its default'}); rated at {wl.context_tokens:,}: set the context "
        "to match or plan for the larger KV cache"
    )
    return tokens, line


def rate_variant(
    ref: VariantRef, catalog: Catalog, cap: Capacity, opts: Options = DEFAULT_OPTIONS
) -> list[Result]:
    """Every way to run one variant here: one Result per (precision, framework) tried,
    each with its verdict, memory estimate, speed and reasons; a single "blocked" Result
    when the variant cannot run locally at all (API-only, no figures). The workload is
    first fitted to the model (context capped at its maximum), and that is said.
    """
    seed_layouts(catalog)
    workload, notes = effective_workload(ref, opts.workload)
    opts = msgspec.structs.replace(opts, workload=workload)
    results = _rate(ref, catalog, cap, opts)
    if notes:
        results = [evolve(r, reasons=(*r.reasons, *notes)) for r in results]
    return results


def _candidates(
    ref: VariantRef, catalog: Catalog, cap: Capacity, opts: Options
) -> tuple[list[Framework], list[str], str]:
    """The frameworks to try for ``ref`` here, why none could be (when none), and a note
    on those the KV cache type asked for left out."""
    fws, why_not = frameworks_for(ref, catalog, cap)
    if opts.framework:
        fws = [f for f in fws if f.id == opts.framework]
    kv = opts.workload.kv_cache_type
    kv_note = ""
    if ref.model.kind in DECODERS and ref.variant.arch is not None and kv != "f16":
        without = [f.name for f in fws if kv not in f.kv_cache_types]
        fws = [f for f in fws if kv in f.kv_cache_types]
        if without:
            kv_note = f"--kv-cache {kv}: {', '.join(without)} cannot use a {kv} KV cache"
        if without and not fws:
            why_not = [kv_note]
    return fws, why_not, kv_note


def serving_frameworks(
    ref: VariantRef, catalog: Catalog, cap: Capacity, opts: Options = DEFAULT_OPTIONS
) -> frozenset[str]:
    """The frameworks listed on ``ref``'s runnable results (``Result.frameworks``), found
    without building the results: for each precision, the frameworks whose placement is
    the best one and runnable. `canirun frameworks` needs only this (issue 15)."""
    if cap.nodes:  # a multi-node layout is planned from the whole result
        rated = rate_variant(ref, catalog, cap, opts)
        return frozenset(f for r in rated if r.verdict in RUNNABLE for f in r.frameworks)
    seed_layouts(catalog)
    if _blocked(ref, cap) is not None:
        return frozenset()
    opts = msgspec.structs.replace(opts, workload=effective_workload(ref, opts.workload)[0])
    fws = _candidates(ref, catalog, cap, opts)[0]
    doubts = _doubts(ref, fws, cap)
    room = memory_anywhere(cap)
    kind = ref.model.kind
    found: set[str] = set()
    able_by_precision = _able_table(cap, fws, kind)
    # Fewest bits first: the precisions likeliest to run, so that the loop stops sooner
    # (the answer is the same in any order).
    for p in sorted(precisions_for(ref, fws, opts.precisions), key=lambda p: p.bits):
        # Frameworks that cannot run p on any device here are never listed, and a
        # runnable verdict always ranks above theirs: leaving them out changes nothing.
        able = _able(able_by_precision, cap, fws, p, kind)
        if all(f.id in found for f in able):
            continue  # it could list no framework that is not listed already
        w = weights(ref.model, ref.variant, p)
        if w is None or w.bytes > room:
            continue  # no framework rates it (no figures), or no memory here holds the weights
        evals = _evaluate(ref, able, p, cap, opts, w, doubts)
        top = min((rank(e.placement.verdict) for e in evals), default=None)
        found |= {
            e.framework.id
            for e in evals
            if rank(e.placement.verdict) == top and e.placement.verdict in RUNNABLE
        }
        if len(found) == len(fws):
            break  # every candidate is already listed
    return frozenset(found)


def _able_table(
    cap: Capacity, fws: list[Framework], kind: str
) -> dict[tuple[str, str], list[Framework]]:
    """``_able``'s answers for one (machine, frameworks, kind): many variants share one
    list of frameworks, so the table is kept, and filled as precisions are asked."""
    return _ABLE.get((cap, *fws), kind, dict)


def _able(
    table: dict[tuple[str, str], list[Framework]],
    cap: Capacity,
    fws: list[Framework],
    p: prec.Precision,
    kind: str,
) -> list[Framework]:
    """Those of ``fws`` that support ``p`` for this kind of model and can run it on some
    device here, kept in ``table`` (``_able_table``'s for these)."""
    key = (p.name, p.family)
    able = table.get(key)
    if able is None:
        able = [f for f in fws if _supports(f, p, kind) and can_run(cap, f, p.name, p.family)]
        table[key] = able
    return able


_ABLE: ByIdentity[dict[tuple[str, str], list[Framework]]] = ByIdentity(256)


def memory_anywhere(cap: Capacity) -> int:
    """More than any runnable placement can hold here: RAM's budget and every GPU's free
    memory together. Each placement holds all the weights within those (a GPU's budget is
    within its free memory), so weights above it are too big for every framework."""
    ram = max(0, ram_budget(cap) or 0)
    return ram + sum(g.free_bytes or 0 for g in cap.gpus)


def _rate(ref: VariantRef, catalog: Catalog, cap: Capacity, opts: Options) -> list[Result]:
    blocked = _blocked(ref, cap)
    if blocked is not None:
        return [blocked]
    fws, why_not, kv_note = _candidates(ref, catalog, cap, opts)
    facts = _facts(ref, fws, cap, opts)
    base = {**facts.base, "format": None, "context_tokens": None, "sources": facts.sources}
    if not fws:
        why = why_not or [f"no framework in the catalog serves it here{_only(opts)}"]
        return [Result(**base, precision=None, verdict="unsupported", reasons=tuple(why))]
    order = [f.id for f in fws]
    results = []
    for p in precisions_for(ref, fws, opts.precisions):
        evals = _evaluate(ref, fws, p, cap, opts, doubts=facts.doubts)
        if not evals:
            results.append(
                Result(
                    **base,
                    precision=p.name,
                    verdict="unknown",
                    reasons=("the catalog has no parameter count",),
                )
            )
            continue
        best = _pick(evals, cap, order, catalog.gpus)
        # Only frameworks that run this precision the same way (same placement kind,
        # so the same device): a CPU-only option is not listed on a GPU row.
        usable = [
            e.framework.id
            for e in evals
            if e.placement.verdict in RUNNABLE and e.placement.verdict == best.placement.verdict
        ]
        result = _result(ref, best, cap, opts, usable, facts)
        if cap.nodes and result.verdict not in ("gpu", "multi-gpu"):
            result = across_nodes(ref, evals, cap, opts, result)
        results.append(result)
    if not results:
        wanted = ", ".join(opts.precisions or ()) or "any precision"
        results.append(
            Result(
                **base,
                precision=None,
                verdict="unsupported",
                reasons=(f"no {wanted} with {', '.join(order)}", *([kv_note] if kv_note else [])),
            )
        )
    return results


def _only(opts: Options) -> str:
    return f" with {opts.framework}" if opts.framework else ""


def best_result(results: list[Result]) -> Result:
    """Best verdict first; among runnable ones the highest-quality precision, among the
    rest the smallest need (the one closest to fitting)."""

    def key(r: Result) -> tuple[int, int]:
        if r.verdict in RUNNABLE:
            p = prec.PRECISIONS.get(r.precision or "")
            return rank(r.verdict), -(p.quality if p else 0)
        total = r.memory.total_bytes if r.memory and r.memory.total_bytes else 2**62
        return rank(r.verdict), total

    return min(results, key=key)


def max_context(
    ref: VariantRef,
    catalog: Catalog,
    cap: Capacity,
    opts: Options,
    best: Result,
    known: tuple[prec.Precision, Weights] | None = None,
) -> int | None:
    """The largest context at which ``best``'s precision and framework keep its verdict.

    ``known``: the precision and weights when they come from a file rather than the catalog.
    Kept means the same verdict or a better one; the search (context_search.largest_kept)
    answers as a bisection of [1, the model's maximum] does, in fewer probes.
    """
    arch = ref.variant.arch
    if arch is None or best.verdict not in RUNNABLE or best.precision is None:
        return None
    if best.verdict == "multi-node":
        return None  # the layout is planned for the context asked; not searched yet
    fw = catalog.framework_by_id[best.framework or ""]
    p, w = known if known else (prec.PRECISIONS[best.precision], None)
    w = w or weights(ref.model, ref.variant, p)
    if w is None:
        return None
    target, ram = rank(best.verdict), ram_budget(cap)

    def probe(ctx: int) -> Probe:
        wl = evolve(opts.workload, context_tokens=ctx)
        need, _ = build_need(ref, fw, p, w, wl, cap.backends)
        placed = place(need, cap, fw)
        kept = rank(placed.verdict) <= target
        room = _room(placed, need, ram) if kept else None
        return Probe(kept, (placed.verdict, placed.gpu_layers), room, _size(need))

    limit = arch.extended_context if opts.workload.extended_context else None
    return largest_kept(probe, limit or arch.max_context, opts.workload.context_tokens)


def _room(placed: Placement, need: Need, ram: int | None) -> int | None:
    """About the bytes left before ``placed`` stops fitting, for ``largest_kept`` to guess
    with: its headroom, but for a partial offload with room in RAM for what a full GPU moves
    there (a layer, from each GPU of a split), RAM's own."""
    in_ram = placed.ram_bytes
    if placed.verdict != "offload" or ram is None or in_ram is None:
        return placed.headroom_bytes
    largest = largest_layer(need)
    if largest is not None and ram - in_ram < largest * len(placed.gpus):
        return placed.headroom_bytes  # the smaller of a GPU's spare and RAM's room
    return ram - in_ram


def _size(need: Need) -> int:
    """Every byte of a need, in whichever pool: a slope for ``largest_kept`` to start from."""
    o = need.overheads
    return (
        need.weights
        + need.kv
        + o.gpu_compute
        + o.gpu_per_device
        + o.cpu_compute
        + o.cpu_process
        + o.cpu_backend
        + o.cpu_pinned
    )


def summarize(
    ref: VariantRef,
    results: list[Result],
    catalog: Catalog,
    cap: Capacity,
    opts: Options,
    known: tuple[prec.Precision, Weights] | None = None,
) -> Summary:
    """The one-line answer for a variant: its best result (best verdict, then quality,
    installed frameworks first) and the largest context that still fits that way.
    """
    opts = msgspec.structs.replace(opts, workload=effective_workload(ref, opts.workload)[0])
    prefer: Any = opts.prefer
    advice = recommend(results, ref.model, cap, catalog.gpus, prefer)
    best = advice.result if advice else best_result(results)
    speed = best.tokens_per_second.tokens_per_second if best.tokens_per_second else None
    return Summary(
        model_id=ref.id,
        name=ref.variant.name,
        category=ref.model.category,
        verdict=best.verdict,
        precision=best.precision,
        framework=best.framework,
        max_context_tokens=max_context(ref, catalog, cap, opts, best, known),
        tokens_per_second=speed,
        reason=best.reasons[0] if best.reasons else "",
        results=len(results),
        why=advice.why if advice else (),
        best_quality=as_choice(advice.best_quality) if advice else None,
        prefer=opts.prefer,
        disk_fits=best.disk_fits,
        faster=faster_option(best, results),
    )
