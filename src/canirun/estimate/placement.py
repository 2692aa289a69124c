"""Where a model fits: one GPU, several, GPU plus RAM, RAM alone, or nowhere.

Options are tried best first. A figure a decision needs but the host lacks
(free VRAM, usable RAM) never counts as a fit: that option is "unknown", and if
no option fits with known figures the verdict is ``unknown``, not ``too-big``.
canirun never plans to 100 % of a memory pool: it keeps headroom (below) and
says how much is left.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from typing import Protocol

import msgspec

from canirun.catalog.rules import Device, DeviceKind, Support, supports
from canirun.catalog.schema import Framework
from canirun.estimate.backends import choose
from canirun.estimate.capacity import Capacity, GpuSlot
from canirun.estimate.memo import ByIdentity
from canirun.estimate.results import Verdict
from canirun.estimate.runtime import Overheads
from canirun.units import format_gib

MIB = 2**20
GIB = 2**30
# Headroom canirun keeps free (its own policy, stated in every report): on a GPU
# 5 % of its memory, at least 256 MiB; in RAM 10 % of what is usable, at least
# 1 GiB, for the OS and everything else running.
GPU_HEADROOM_SHARE, GPU_HEADROOM_MIN = 0.05, 256 * MIB
RAM_HEADROOM_SHARE, RAM_HEADROOM_MIN = 0.10, GIB


class Need(msgspec.Struct, frozen=True):
    """What one model at one precision, on one framework, needs."""

    weights: int
    kv: int
    overheads: Overheads
    # Each repeating layer's weights and its share of the KV cache, for partial offload
    # (``layers``); None: not layered.
    layer_weights: tuple[int, ...] | None = None
    layer_kv: float = 0.0
    # Non-layered models offload by component: the largest one must fit on the GPU.
    largest_component: int | None = None
    # Diffusion pipelines with component roles: the largest stage's weights plus that
    # stage's own activations, which replaces largest_component + all activations.
    offload_peak: int | None = None
    heads: int | None = None  # tensor parallelism needs heads divisible by the GPU count
    # The precision and its family (ggml/torch): some GPU backends cannot run some
    # precisions (MPS: fp8), and the capability table decides which devices can.
    precision: str | None = None
    family: str | None = None

    @property
    def layers(self) -> tuple[int, ...] | None:
        """Per repeating layer, its weights plus its KV share; None: not layered."""
        return layer_sums(self)[0] if self.layer_weights else None


def layer_sums(need: Need) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The need's layers (weights + KV share each) and their running totals (``sums[i]``:
    the first i layers together). Worked out when an offload is tried, not for every need,
    and once per file and KV size: the weights are memoised, so every framework and every
    context probe of `max_context` asks with the same tuple, which is then not hashed again."""
    weights, per_kv = need.layer_weights or (), need.layer_kv

    def work() -> tuple[tuple[int, ...], tuple[int, ...]]:
        layers = tuple(map(round, map(per_kv.__add__, weights)))
        return layers, tuple(accumulate(layers, initial=0))

    return _LAYERS.get((weights,), per_kv, work)


_LAYERS: ByIdentity[tuple[tuple[int, ...], tuple[int, ...]]] = ByIdentity()


class _Totals:
    """``layer_sums(need)[1]`` read without writing it out: ``totals[i]`` is the first i
    layers' weights plus i times the rounded KV share. That is the same figure when every
    ``round(kv + weights)`` is ``weights + round(kv)``, which holds unless the KV share is
    within a thousandth of a half (``exact_totals`` checks). The offload search reads a
    handful of the totals; writing all of them cost a tenth of a scan on a GPU (issue 15)."""

    __slots__ = ("_kv", "_weights")

    def __init__(self, weights: tuple[int, ...], kv: int) -> None:
        self._weights, self._kv = weights, kv

    def __len__(self) -> int:
        return len(self._weights)

    def __getitem__(self, i: int) -> int:
        return self._weights[i] + i * self._kv


# Below this a layer's weights plus its KV share are exact to 1/2048 as a float (ulp 2**-10
# at 2**42), well within the thousandth that _Totals keeps away from a half.
_EXACT_BELOW = 2**41


class Totals(Protocol):
    """What the offload search reads of running totals: a tuple, or a _Totals view."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> int: ...


def exact_totals(need: Need) -> Totals:
    """The running totals of the need's layers (``layer_sums(need)[1]``), as a view when
    they can be read off the weights' own running totals, else written out."""
    figures = _exact_figures(need)
    if figures is not None:
        return _Totals(figures[0], round(need.layer_kv))
    return layer_sums(need)[1]


def largest_layer(need: Need) -> int | None:
    """``max(need.layers)`` (None: not layered), read off the weights like exact_totals."""
    if not need.layer_weights:
        return None
    figures = _exact_figures(need)
    if figures is not None:
        return figures[1] + round(need.layer_kv)
    return max(layer_sums(need)[0])


def _exact_figures(need: Need) -> tuple[tuple[int, ...], int] | None:
    """The weights' running totals and largest layer, when every layer's total is its
    weights plus the rounded KV share (see _Totals); None when it may not be."""
    per_kv = need.layer_kv
    if not (0 <= per_kv < _EXACT_BELOW and abs(per_kv % 1 - 0.5) > 0.001):
        return None
    weights = need.layer_weights or ()
    key = (id(weights),)
    hit = _WEIGHT_FIGURES.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    largest = max(weights, default=0)
    figures = (tuple(accumulate(weights, initial=0)), largest) if largest < _EXACT_BELOW else None
    return _WEIGHT_FIGURES.keep(key, (weights,), figures)


_WEIGHT_FIGURES: ByIdentity[tuple[tuple[int, ...], int] | None] = ByIdentity()


Reasons = tuple[str, ...]
# A placement's fields but its reasons: verdict, gpus, gpu_layers, gpu/ram/headroom bytes, split.
_Bytes = int | None
_Figures = tuple[Verdict, tuple[int, ...], int | None, _Bytes, _Bytes, _Bytes, str | None]


class Placement:
    """Where a need goes and why. ``reasons`` may be given as a function that writes them:
    they are then written the first time they are read. A scan places every framework,
    precision and probed context, and reports the reasons of one option per precision.
    Immutable, like the other records."""

    __slots__ = (
        "_reasons",
        "gpu_bytes",
        "gpu_layers",
        "gpus",
        "headroom_bytes",
        "ram_bytes",
        "split",
        "verdict",
    )
    verdict: Verdict
    gpus: tuple[int, ...]
    gpu_layers: int | None
    gpu_bytes: int | None
    ram_bytes: int | None
    headroom_bytes: int | None
    split: str | None  # multi-gpu: "tensor-parallel", "layer-split", "device-map"
    _reasons: Reasons | Callable[[], Reasons]

    def __init__(
        self,
        verdict: Verdict,
        gpus: tuple[int, ...] = (),
        gpu_layers: int | None = None,
        gpu_bytes: int | None = None,
        ram_bytes: int | None = None,
        headroom_bytes: int | None = None,
        split: str | None = None,
        reasons: Reasons | Callable[[], Reasons] = (),
    ) -> None:
        # Each slot set through its own descriptor: a third cheaper than object.__setattr__'s
        # lookup by name, and a scan makes ~8,000 placements.
        _SET_VERDICT(self, verdict)
        _SET_GPUS(self, gpus)
        _SET_GPU_LAYERS(self, gpu_layers)
        _SET_GPU_BYTES(self, gpu_bytes)
        _SET_RAM_BYTES(self, ram_bytes)
        _SET_HEADROOM_BYTES(self, headroom_bytes)
        _SET_SPLIT(self, split)
        _SET_REASONS(self, reasons)

    @property
    def reasons(self) -> Reasons:
        reasons = self._reasons
        if not isinstance(reasons, tuple):
            reasons = reasons()
            _SET_REASONS(self, reasons)
        return reasons

    def with_reasons(self, reasons: Reasons | Callable[[], Reasons]) -> Placement:
        """The same placement with other reasons."""
        return Placement(*self._figures(), reasons)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Placement is immutable: cannot set {name}")

    def _figures(
        self,
    ) -> tuple[
        Verdict, tuple[int, ...], int | None, int | None, int | None, int | None, str | None
    ]:
        """Every field but the reasons, in the constructor's order."""
        return (
            self.verdict,
            self.gpus,
            self.gpu_layers,
            self.gpu_bytes,
            self.ram_bytes,
            self.headroom_bytes,
            self.split,
        )

    def _key(self) -> tuple[object, ...]:
        return (*self._figures(), self.reasons)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Placement) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        names = ("verdict", "gpus", "gpu_layers", "gpu_bytes", "ram_bytes", "headroom_bytes")
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._key(), strict=False))
        return f"Placement({fields}, split={self.split!r}, reasons={self.reasons!r})"


def _slot_setter(name: str) -> Callable[[Placement, object], None]:
    """The setter of one of Placement's slots (its member descriptor's ``__set__``)."""
    setter: Callable[[Placement, object], None] = Placement.__dict__[name].__set__
    return setter


_SET_VERDICT = _slot_setter("verdict")
_SET_GPUS = _slot_setter("gpus")
_SET_GPU_LAYERS = _slot_setter("gpu_layers")
_SET_GPU_BYTES = _slot_setter("gpu_bytes")
_SET_RAM_BYTES = _slot_setter("ram_bytes")
_SET_HEADROOM_BYTES = _slot_setter("headroom_bytes")
_SET_SPLIT = _slot_setter("split")
_SET_REASONS = _slot_setter("_reasons")


def gpu_headroom(slot: GpuSlot) -> int | None:
    """The headroom kept on this GPU, or None when its total memory is unknown."""
    if slot.total_bytes is None:
        return None
    return max(GPU_HEADROOM_MIN, round(slot.total_bytes * GPU_HEADROOM_SHARE))


def ram_headroom(usable: int) -> int:
    return max(RAM_HEADROOM_MIN, round(usable * RAM_HEADROOM_SHARE))


def gpu_budget(slot: GpuSlot, fraction: float) -> int | None:
    """Bytes a runtime may plan with on this GPU, or None when that cannot be told.

    Both figures are needed: free memory, and the total, which sets the headroom
    and a runtime's cap (vLLM's gpu_memory_utilization). Free memory alone would
    skip both, so it is never enough.
    """
    headroom = gpu_headroom(slot)
    if slot.free_bytes is None or headroom is None or slot.total_bytes is None:
        return None
    budget = slot.free_bytes - headroom
    if fraction < 1:
        # A runtime that claims a share of the card (vLLM's gpu_memory_utilization)
        # leaves the rest free itself: that share is its budget, within free memory
        # less canirun's headroom.
        budget = min(budget, round(slot.total_bytes * fraction))
    return budget


def ram_budget(cap: Capacity) -> int | None:
    usable = cap.ram_usable_bytes
    if usable is None:
        return None
    if usable == _LAST_BUDGET[0]:  # one machine per scan: its budget asked ~5,000 times
        return _LAST_BUDGET[1]
    budget = usable - ram_headroom(usable)
    _LAST_BUDGET[:] = [usable, budget]
    return budget


_LAST_BUDGET: list[int] = [-1, 0]  # (usable RAM, its budget), the last asked


def gpu_device(slot: GpuSlot) -> Device:
    kind: DeviceKind = slot.vendor if slot.vendor in ("nvidia", "amd", "apple", "intel") else "cpu"  # type: ignore[assignment]
    return Device(kind, slot.compute_capability, getattr(slot, "arch", None))


def cpu_device(cap: Capacity) -> Device:
    return Device("cpu", cpu_flags=cap.cpu_flags)


def runs(
    framework: Framework, device: Device, precision: str | None, family: str | None
) -> Support:
    """The capability table's answer for this precision on this device."""
    if precision is None:
        return Support(True, "no precision to check")
    return supports(framework.id, device, precision, family or "torch")


# How a GPU vendor id reads in a reason. Each of them is said with a vowel sound first
# ("an NVIDIA", "an AMD", "an Apple", "an Intel").
VENDOR_NAMES = {"nvidia": "NVIDIA", "amd": "AMD", "apple": "Apple", "intel": "Intel"}


def a_gpu_of(vendors: Iterable[str]) -> str:
    """The GPU a reason names, with its article: "an NVIDIA/AMD GPU" for ("nvidia", "amd");
    the CPU is left out."""
    names = [VENDOR_NAMES.get(v, v) for v in vendors if v != "cpu"]
    return f"an {'/'.join(names)} GPU" if names else "a supported GPU"


def usable_gpus(
    cap: Capacity,
    framework: Framework,
    precision: str | None = None,
    family: str | None = None,
) -> tuple[list[GpuSlot], list[str], list[tuple[GpuSlot, str]]]:
    """GPUs this framework can drive (each with the backend it would use), why the
    others are left out, and the GPUs it may or may not drive (a minimum compute
    capability that cannot be checked)."""
    out, notes, doubts = _usable_here(cap, framework, precision, family)
    return list(out), list(notes), list(doubts)


def any_usable_gpu(cap: Capacity, framework: Framework) -> bool:
    """Whether ``framework`` can drive a GPU here (any precision): ``usable_gpus``'s first
    answer, without copying it."""
    return bool(_usable_here(cap, framework, None, None)[0])


def can_run(cap: Capacity, framework: Framework, precision: str, family: str) -> bool:
    """Whether ``place`` can give any need of this precision a runnable verdict here: a GPU
    the framework drives at it, or its CPU (``place`` follows the same rules). A GPU it
    only may drive gives at best "unknown"."""
    return _CAN_RUN.get(
        (cap, framework), (precision, family), lambda: _can_run(cap, framework, precision, family)
    )


def _can_run(cap: Capacity, framework: Framework, precision: str, family: str) -> bool:
    if _usable_here(cap, framework, precision, family)[0]:
        return True
    return framework.cpu_only_ok and runs(framework, cpu_device(cap), precision, family).runs


_CAN_RUN: ByIdentity[bool] = ByIdentity()


_Usable = tuple[tuple[GpuSlot, ...], tuple[str, ...], tuple[tuple[GpuSlot, str], ...]]
# The same question for every model of a scan: answered once per framework and precision.
_USABLE: ByIdentity[_Usable] = ByIdentity()


def _usable_here(
    cap: Capacity, framework: Framework, precision: str | None, family: str | None
) -> _Usable:
    key = (id(cap), id(framework), precision, family)
    hit = _USABLE.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _USABLE.keep(key, (cap, framework), _usable(cap, framework, precision, family))


def _usable(
    cap: Capacity, framework: Framework, precision: str | None, family: str | None
) -> _Usable:
    out: list[GpuSlot] = []
    notes: list[str] = []
    doubts: list[tuple[GpuSlot, str]] = []
    for probed in cap.gpus:
        if probed.vendor not in framework.accelerators:
            notes.append(f"{probed.label}: {framework.name} has no {probed.vendor} support")
            continue
        choice = choose(
            probed.vendor, probed.arch, probed.runtimes, framework, cap.backends, precision
        )
        if not choice.usable:
            notes.append(f"{probed.label}: {choice.reason}")
            continue
        slot = msgspec.structs.replace(probed, backend=choice.backend)
        support = runs(framework, gpu_device(slot), precision, family)
        if not support.runs:
            notes.append(f"{slot.label}: {support.how}")
            continue
        if support.doubt:
            doubts.append((slot, f"{slot.label}: {support.doubt}"))
            continue
        minimum = framework.min_compute_capability
        if slot.vendor != "nvidia" or not minimum:
            out.append(slot)
            continue
        cc = parse_cc(slot.compute_capability)
        if cc is None:
            doubts.append(
                (
                    slot,
                    f"{slot.label}: compute capability unknown, so {framework.name}'s "
                    f"minimum {minimum} cannot be checked",
                )
            )
        elif cc < (parse_cc(minimum) or (0, 0)):
            notes.append(
                f"{slot.label}: compute capability {slot.compute_capability} is below "
                f"{framework.name}'s minimum {minimum}"
            )
        else:
            out.append(slot)
    return tuple(out), tuple(notes), tuple(doubts)


def parse_cc(text: str | None) -> tuple[int, int] | None:
    """ "8.9" -> (8, 9); None for anything that is not a compute capability."""
    if text is None:
        return None
    major, _, minor = text.strip().partition(".")
    for part in (major, minor):
        if not (part.isascii() and part.isdigit() and len(part) <= 3):
            return None
    return int(major), int(minor)


def device_cost(need: Need, slot: GpuSlot) -> int:
    """The runtime's fixed cost on this GPU: its backend's context and reserves."""
    backend = slot.backend or ""
    for name, cost in reversed(need.overheads.by_backend):  # the last entry wins, as in a dict
        if name == backend:
            return cost
    return need.overheads.gpu_per_device


def _on_one_gpu(need: Need, slot: GpuSlot, fraction: float) -> tuple[bool | None, int, int | None]:
    total = need.weights + need.kv + need.overheads.gpu_compute + device_cost(need, slot)
    budget = gpu_budget(slot, fraction)
    if budget is None:
        return None, total, None
    return total <= budget, total, budget - total


def _with(placement: Placement, more: Sequence[str]) -> Placement:
    """``placement`` with more reasons after its own (written when read)."""
    if not more:
        return placement
    return placement.with_reasons(lambda: (*placement.reasons, *more))


def _budget_unknown(slot: GpuSlot) -> str:
    what = "free memory" if slot.free_bytes is None else "total memory"
    return f"{slot.label}: {what} unknown"


def _rank(slots: list[GpuSlot], fraction: float) -> list[GpuSlot]:
    def key(s: GpuSlot) -> int:
        budget = gpu_budget(s, fraction)
        return -1 if budget is None else budget

    return sorted(slots, key=key, reverse=True)


class _Pools(msgspec.Struct, frozen=True):
    """GPUs in the order placement tries them (largest budget first), with their budgets."""

    slots: tuple[GpuSlot, ...]
    budgets: tuple[int | None, ...]


def _pools(slots: list[GpuSlot], fraction: float) -> _Pools:
    ranked = _rank(slots, fraction)
    return _Pools(tuple(ranked), tuple(gpu_budget(s, fraction) for s in ranked))


class _Setting(msgspec.Struct, frozen=True):
    """What placing any need on this machine with one framework, precision and GPU share
    starts from: the same for every model of a scan, so worked out once."""

    usable: _Pools
    notes: tuple[str, ...]  # GPUs the framework cannot drive, and why
    unknown: tuple[str, ...]  # usable GPUs whose budget cannot be told
    doubts: tuple[str, ...]  # GPUs it may or may not drive, and why
    everything: _Pools  # the usable GPUs and the doubtful ones
    cpu_ok: Support | None  # the capability table's answer on the CPU (cpu_only_ok only)


def _setting(
    cap: Capacity, framework: Framework, precision: str | None, family: str | None, fraction: float
) -> _Setting:
    key = (id(cap), id(framework), precision, family, fraction)
    hit = _SETTINGS.entries.get(key)  # ByIdentity's fast path: ~4,400 asks a scan, ~70 new
    if hit is not None:
        return hit[1]
    setting = _setting_of(cap, framework, precision, family, fraction)
    return _SETTINGS.keep(key, (cap, framework), setting)


_SETTINGS: ByIdentity[_Setting] = ByIdentity()


def _setting_of(
    cap: Capacity, framework: Framework, precision: str | None, family: str | None, fraction: float
) -> _Setting:
    gpus, notes, doubts = usable_gpus(cap, framework, precision, family)
    usable = _pools(gpus, fraction)
    unknown = tuple(
        _budget_unknown(s) for s, b in zip(usable.slots, usable.budgets, strict=True) if b is None
    )
    everything = _pools(gpus + [s for s, _ in doubts], fraction) if doubts else usable
    cpu_ok = runs(framework, cpu_device(cap), precision, family) if framework.cpu_only_ok else None
    return _Setting(
        usable,
        tuple(notes),
        unknown,
        tuple(why for _, why in doubts),
        everything,
        cpu_ok,
    )


def _first_fit(need: Need, pools: _Pools, cap: Capacity, framework: Framework) -> Placement | None:
    if not pools.slots:
        return None
    for option in (_one_gpu, _multi_gpu, _offload):
        found = option(need, pools, cap, framework)
        if found is not None:
            return found
    return None


def place(need: Need, cap: Capacity, framework: Framework) -> Placement:
    """Where `need` goes on this machine with `framework`: the first that fits of one GPU,
    several GPUs (if the framework splits models), partial offload (GPU layers + RAM),
    then CPU only; else "unknown" when a figure it needs is missing or the framework may
    not support a GPU it would fit on (never a guess that it fits), "unsupported" when
    the framework needs a GPU there is none of, or "too-big". Every placement carries
    its reasons, misses and framework notes included.
    """
    setting = _setting(cap, framework, need.precision, need.family, need.overheads.gpu_fraction)
    pools = setting.usable
    found = _first_fit(need, pools, cap, framework)
    if found is not None:
        return _with(found, setting.notes)
    # Tuples, extended only on the rarer paths: most placements that reach here are the
    # CPU's, and a scan makes thousands of them.
    unknown, notes = setting.unknown, setting.notes
    if setting.doubts:
        # It would fit on a GPU this framework may not support: that is not a fit.
        if _first_fit(need, setting.everything, cap, framework) is not None:
            unknown += setting.doubts
        pools = setting.everything
    cpu_ok = setting.cpu_ok
    if cpu_ok is not None and not cpu_ok.runs:
        notes += (f"CPU: {cpu_ok.how}",)
    cpu = _cpu(need, cap, framework) if cpu_ok is None or cpu_ok.runs else None
    tried = pools
    if cpu is not None and not (tried.slots or notes or unknown):
        # No GPU tried and nothing to add: the CPU's placement, fit or not, is the whole
        # story (the general path below would write the same verdict and reasons).
        return cpu

    # The reasons are written when read: why each GPU is too small (and the CPU, when it is).
    def misses() -> list[str]:
        lines = _why_not_gpu(need, tried)
        if cpu is not None and cpu.verdict not in ("cpu", "unknown"):
            lines += cpu.reasons
        return lines

    if cpu is not None and cpu.verdict == "cpu":
        return cpu.with_reasons(lambda: (*cpu.reasons, *misses(), *notes, *unknown))
    if cpu is not None and cpu.verdict == "unknown":
        unknown += cpu.reasons
    if unknown:
        return Placement("unknown", reasons=lambda: (*dict.fromkeys(unknown), *misses(), *notes))
    if not pools.slots and cpu is None:
        if framework.cpu_only_ok:
            first = f"{framework.name} cannot run {need.precision or 'it'} on any device here"
        else:
            first = f"{framework.name} needs a supported GPU"
        return Placement("unsupported", reasons=(first, *notes))

    def too_big() -> Reasons:
        attempt = _best_attempt(need, tried, cap, framework)
        return (*misses(), *attempt, *notes) or ("no memory pool is large enough",)

    return Placement("too-big", reasons=too_big)


def _best_attempt(need: Need, pools: _Pools, cap: Capacity, framework: Framework) -> list[str]:
    """One line on the largest combination tried: all GPUs together, then GPUs plus RAM."""
    budgets = [b for b in pools.budgets if b is not None]
    fixed = need.overheads.gpu_per_device + need.overheads.gpu_compute
    body = need.weights + need.kv
    lines = []
    if len(budgets) > 1 and framework.multi_gpu != "none":
        room = sum(max(0, b - fixed) for b in budgets)
        lines.append(
            f"best attempt across all {len(budgets)} GPUs: {format_gib(room)} for "
            f"{format_gib(body)} of weights and KV cache"
        )
    ram = ram_budget(cap)
    if budgets and framework.partial_offload and ram is not None:
        spread = len(budgets) if framework.multi_gpu == "layer-split" else 1
        room = sum(max(0, b - fixed) for b in budgets[:spread]) + ram
        lines.append(
            f"best attempt on GPU + RAM: {format_gib(room)} for "
            f"{format_gib(body + need.overheads.cpu_process)}"
        )
    return lines


def _one_gpu(need: Need, pools: _Pools, cap: Capacity, framework: Framework) -> Placement | None:
    body = need.weights + need.kv + need.overheads.gpu_compute
    for slot, budget in zip(pools.slots, pools.budgets, strict=True):
        if budget is None:
            continue
        total = body + device_cost(need, slot)
        if total <= budget:
            return Placement(
                "gpu",
                gpus=(slot.index,) if slot.index is not None else (),
                gpu_bytes=total,
                ram_bytes=need.overheads.cpu_process,
                headroom_bytes=budget - total,
                reasons=functools.partial(_on_gpu_reasons, slot, total, budget - total),
            )
    return None


def _on_gpu_reasons(slot: GpuSlot, total: int, left: int) -> Reasons:
    free, headroom = _slot_figures(slot)
    return (
        f"needs {format_gib(total)} on the GPU{_via(slot)}; {slot.label} has "
        f"{free} free ({format_gib(left)} to spare after {headroom} headroom)",
    )


def _slot_figures(slot: GpuSlot) -> tuple[str, str]:
    """A GPU's free memory and its headroom as the lines write them: the same in every
    line of a scan, so written once per GPU."""
    key = (id(slot),)
    hit = _SLOT_FIGURES.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    figures = (format_gib(slot.free_bytes), format_gib(gpu_headroom(slot)))
    return _SLOT_FIGURES.keep(key, (slot,), figures)


_SLOT_FIGURES: ByIdentity[tuple[str, str]] = ByIdentity(1024)


def _via(slot: GpuSlot) -> str:
    return f" (via {slot.backend})" if slot.backend else ""


def _why_not_gpu(need: Need, pools: _Pools) -> list[str]:
    body = need.weights + need.kv + need.overheads.gpu_compute
    lines = []
    for slot, budget in zip(pools.slots, pools.budgets, strict=True):
        if budget is None:
            continue
        total = body + device_cost(need, slot)
        if total > budget:
            lines.append(
                f"needs {format_gib(total)} on one GPU; {slot.label} has "
                f"{_slot_figures(slot)[0]} free"
            )
    return lines


def _multi_gpu(need: Need, pools: _Pools, cap: Capacity, framework: Framework) -> Placement | None:
    ranked = pools.slots
    if framework.multi_gpu == "none" or len(ranked) < 2:
        return None
    if any(b is None for b in pools.budgets):
        return None
    known = [b or 0 for b in pools.budgets]
    per_device = max(device_cost(need, s) for s in ranked) + need.overheads.gpu_compute
    body = need.weights + need.kv
    if framework.multi_gpu == "tensor-parallel":
        for n in (2, 4, 8):
            if n > len(ranked) or (need.heads and need.heads % n):
                continue
            share = round(body / n) + per_device
            if all(b >= share for b in known[:n]):
                return _split(list(ranked[:n]), share * n, known[:n], "tensor-parallel", share)
        return None
    if sum(b - per_device for b in known) >= body:
        return _split(
            list(ranked), body + per_device * len(ranked), known, framework.multi_gpu, None
        )
    return None


def _split(
    chosen: list[GpuSlot], total: int, budgets: list[int], how: str, share: int | None
) -> Placement:
    def reasons() -> Reasons:
        names = ", ".join(s.label for s in chosen)
        each = f" ({format_gib(share)} each)" if share else ""
        return (f"needs {format_gib(total)} split over {len(chosen)} GPUs by {how}{each}: {names}",)

    return Placement(
        "multi-gpu",
        gpus=tuple(s.index for s in chosen if s.index is not None),
        gpu_bytes=total,
        headroom_bytes=sum(budgets) - total,
        split=how,
        reasons=reasons,
    )


def _offload(need: Need, pools: _Pools, cap: Capacity, framework: Framework) -> Placement | None:
    ranked = pools.slots
    if not framework.partial_offload or not ranked:
        return None
    ram = ram_budget(cap)
    if ram is None or ranked[0].unified:
        return None
    if need.layer_weights:
        # A layer-split runtime (llama.cpp's default) spreads layers over every GPU,
        # in proportion to free memory, and keeps the rest in RAM.
        n = len(ranked) if framework.multi_gpu == "layer-split" else 1
        spread = [
            (s, b) for s, b in zip(ranked[:n], pools.budgets[:n], strict=True) if not s.unified
        ]
        return _layer_offload(need, spread, cap, ram)
    return _component_offload(need, ranked[0], pools.budgets[0], cap, ram)


def _layer_offload(
    need: Need, spread: list[tuple[GpuSlot, int | None]], cap: Capacity, ram: int
) -> Placement | None:
    # Layers are never negative, so the layers that fit one after another in a GPU's room
    # are those whose running total fits it.
    sums = exact_totals(need)
    n = len(sums) - 1
    k, used, on_gpu, spare = 0, [], 0, []
    for slot, budget in spread:
        if budget is None or k >= n:
            break
        fixed_gpu = device_cost(need, slot) + need.overheads.gpu_compute
        room, start = budget - fixed_gpu, k
        k = max(start, bisect_right(sums, sums[start] + room, lo=start) - 1)
        if k > start:
            taken = sums[k] - sums[start]
            used.append(slot)
            on_gpu += taken + fixed_gpu
            spare.append(room - taken)
    process = need.overheads.cpu_process
    # the CPU's compute buffer is pinned host memory with a GPU taking part: all of it counts
    ram_compute = need.overheads.cpu_compute + need.overheads.cpu_pinned
    in_ram = need.weights + need.kv - sums[k] + ram_compute + process
    if k == 0 or in_ram > ram:
        return None

    usable = cap.ram_usable_bytes

    def reasons() -> Reasons:
        names = ", ".join(f"{s.label}{_via(s)}" for s in used)
        return (
            f"{k} of {n} layers fit on {names} ({format_gib(on_gpu)}); "
            f"the rest needs {format_gib(in_ram)} of RAM, "
            f"{_ram_figures(usable)[0] if usable is not None else '?'} usable",
        )

    return Placement(
        "offload",
        gpus=tuple(s.index for s in used if s.index is not None),
        gpu_layers=k,
        gpu_bytes=on_gpu,
        ram_bytes=in_ram,
        headroom_bytes=min(*spare, ram - in_ram),
        split="layer-split" if len(used) > 1 else None,
        reasons=reasons,
    )


# Sequential CPU offload (diffusers' enable_sequential_cpu_offload, ComfyUI --lowvram,
# AUTOMATIC1111 --lowvram) keeps one submodule at a time on the GPU. canirun plans with
# an eighth of the largest component for it: an estimate, not a published figure.
SEQUENTIAL_SHARE = 1 / 8


def _component_offload(
    need: Need, slot: GpuSlot, budget: int | None, cap: Capacity, ram: int
) -> Placement | None:
    if need.largest_component is None or budget is None:
        return None
    fixed_gpu = device_cost(need, slot) + need.overheads.gpu_compute
    in_ram = need.weights + need.overheads.cpu_process
    gpus = (slot.index,) if slot.index is not None else ()
    if in_ram > ram:
        return None
    on_gpu = need.largest_component + fixed_gpu
    if need.offload_peak is not None:  # a pipeline offloaded by stage (diffusers, ComfyUI)
        on_gpu = need.offload_peak + device_cost(need, slot)
    how = (
        f"with model CPU offload, one component at a time on {slot.label} "
        f"({format_gib(on_gpu)}) and the rest in RAM ({format_gib(in_ram)})"
    )
    if on_gpu > budget:
        on_gpu = round(need.largest_component * SEQUENTIAL_SHARE) + fixed_gpu
        how = (
            f"with sequential CPU offload (diffusers enable_sequential_cpu_offload, ComfyUI/"
            f"AUTOMATIC1111 --lowvram): submodules stream to {slot.label} "
            f"({format_gib(on_gpu)}, estimate), the weights stay in RAM ({format_gib(in_ram)}); "
            "several times slower than on the GPU"
        )
        if on_gpu > budget:
            return None
    return Placement(
        "offload",
        gpus=gpus,
        gpu_bytes=on_gpu,
        ram_bytes=in_ram,
        headroom_bytes=min(budget - on_gpu, ram - in_ram),
        reasons=(how,),
    )


def _cpu(need: Need, cap: Capacity, framework: Framework) -> Placement | None:
    if not framework.cpu_only_ok:
        return None
    over = need.overheads
    total = need.weights + need.kv + over.cpu_compute + over.cpu_process + over.cpu_backend
    ram = ram_budget(cap)
    usable = cap.ram_usable_bytes
    if ram is None or usable is None:
        return Placement("unknown", reasons=("usable RAM unknown",))
    if total > ram:
        return Placement(
            "too-big",
            reasons=lambda: (
                f"needs {format_gib(total)} of RAM; {_ram_figures(usable)[0]} usable",
            ),
        )
    return Placement(
        "cpu",
        ram_bytes=total,
        headroom_bytes=ram - total,
        reasons=lambda: (
            f"needs {format_gib(total)} of RAM; {_ram_figures(usable)[0]} usable "
            f"({format_gib(ram - total)} to spare after {_ram_figures(usable)[1]} headroom)",
        ),
    )


@functools.lru_cache(maxsize=64)
def _ram_figures(usable: int) -> tuple[str, str]:
    """The machine's usable RAM and its headroom as the CPU lines write them: the same in
    every line of a scan, so written once per machine."""
    return format_gib(usable), format_gib(ram_headroom(usable))
