"""The machine as the estimator sees it: memory pools, bandwidths, what is installed.

Built from a probed (or file-described) ``Host``; pure apart from reading the
catalog's GPU table, which fills in a bandwidth NVML could not read and marks
it as such.
"""

from __future__ import annotations

import re
from dataclasses import replace

import msgspec

from canirun.catalog.schema import Backend
from canirun.catalog.schema import Gpu as GpuSpec
from canirun.estimate.memo import ByIdentity
from canirun.hardware.model import Gpu, Host

GIB = 2**30
# Intel's compute-runtime reports 80 % of RAM as an iGPU's global memory on Linux.
INTEL_IGPU_SHARE = 0.8


class GpuSlot(msgspec.Struct, frozen=True):
    """One GPU a process could use, with the memory it can count on."""

    index: int | None
    name: str
    vendor: str
    total_bytes: int | None
    free_bytes: int | None
    compute_capability: str | None
    bandwidth_bytes_per_s: int | None
    bandwidth_source: str | None
    unified: bool = False
    note: str | None = None
    # Dense FP16 tensor throughput from the GPU table (prefill estimates); None: unknown.
    fp16_flops_per_s: int | None = None
    # GPU runtimes it offers here (probed; a file without them: its vendor's) and
    # its architecture (AMD gfx target...), which decide the frameworks that can use it.
    runtimes: tuple[str, ...] = ()
    arch: str | None = None
    # The backend the framework being placed would use (set per framework).
    backend: str | None = None

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.name})" if self.index is not None else self.name


class ClusterNode(msgspec.Struct, frozen=True):
    """Another machine of the cluster this one is rated with (multi-node placement)."""

    name: str
    gpus: tuple[GpuSlot, ...]


class Capacity(msgspec.Struct, frozen=True):
    gpus: tuple[GpuSlot, ...]
    ram_usable_bytes: int | None
    ram_total_bytes: int | None
    ram_bandwidth_bytes_per_s: int | None
    disk_free_bytes: int | None
    disk_path: str | None
    os: str | None  # linux, darwin, windows
    arch: str | None  # x86_64, arm64
    docker: bool | None
    installed: frozenset[str] = msgspec.field(default_factory=frozenset)
    notes: tuple[str, ...] = ()
    # Instruction-set flags the OS advertises (avx2, avx512f, neon...); None: not read.
    cpu_flags: frozenset[str] | None = None
    # Peak fp32 FLOP/s of the usable cores (cores x clock x FLOP/cycle); None: clock unknown.
    cpu_flops_per_s: int | None = None
    # Usable cores and their clock (Hz), for the CPU decode compute limit; None: unknown.
    cpu_cores: float | None = None
    cpu_clock_hz: int | None = None
    backends: tuple[Backend, ...] = ()
    # Every node of the cluster, this one included; empty when rating one machine.
    nodes: tuple[ClusterNode, ...] = ()


def normalize_gpu_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def match_gpu_spec(name: str, specs: tuple[GpuSpec, ...]) -> GpuSpec | None:
    """The catalog GPU a probed name denotes: the longest alias or name contained in it.
    Memoised: placing one model asks again for every framework and precision."""
    return _MATCHES.get((specs,), name, lambda: _match(name, _spec_keys(specs)))


def _match(name: str, keys: tuple[tuple[str, GpuSpec], ...]) -> GpuSpec | None:
    target = f" {normalize_gpu_name(name)} "
    best: tuple[int, GpuSpec] | None = None
    for key, spec in keys:
        if f" {key} " in target and (best is None or len(key) > best[0]):
            best = (len(key), spec)
    return best[1] if best else None


def _spec_keys(specs: tuple[GpuSpec, ...]) -> tuple[tuple[str, GpuSpec], ...]:
    """Every spec's normalised name and aliases, worked out once per GPU table."""

    def keys() -> tuple[tuple[str, GpuSpec], ...]:
        return tuple(
            (key, spec)
            for spec in specs
            for key in (normalize_gpu_name(c) for c in (spec.name, *spec.aliases))
            if key
        )

    return _SPEC_KEYS.get((specs,), None, keys)


_SPEC_KEYS: ByIdentity[tuple[tuple[str, GpuSpec], ...]] = ByIdentity(64)
_MATCHES: ByIdentity[GpuSpec | None] = ByIdentity(1024)


def with_published_figures(host: Host, specs: tuple[GpuSpec, ...]) -> Host:
    """Fill what a probe could not read from the GPU table: bandwidth (labelled
    "catalog (name)") and a Jetson's compute capability. Nothing probed is replaced."""
    gpus = tuple(_published(g, match_gpu_spec(g.name, specs)) for g in host.hardware.gpus)
    return replace(host, hardware=replace(host.hardware, gpus=gpus))


def _published(gpu: Gpu, spec: GpuSpec | None) -> Gpu:
    if spec is None:
        return gpu
    if not gpu.memory_bandwidth_bytes_per_s:
        gpu = replace(
            gpu,
            memory_bandwidth_bytes_per_s=spec.bandwidth_bytes_per_s,
            memory_bandwidth_source=f"catalog ({spec.name})",
        )
    if gpu.compute_capability is None and spec.compute_capability:
        gpu = replace(gpu, compute_capability=spec.compute_capability)
    return gpu


def unified_budget(gpu: Gpu) -> tuple[int | None, str]:
    """What a runtime may allocate on a unified-memory GPU, and where that came from.

    The probe's figure when it has one (Metal's working set, the KFD pool, the
    iGPU runtime's share); otherwise the vendor's rule, labelled an estimate.
    """
    if gpu.usable_memory_bytes:
        return gpu.usable_memory_bytes, gpu.usable_memory_source or "probed"
    total = gpu.memory_total_bytes
    if total is None:
        return None, "unknown"
    if gpu.vendor == "apple":
        # macOS's default recommendedMaxWorkingSetSize: 2/3 of RAM up to 32 GiB, 3/4 above.
        share = 2 / 3 if total <= 32 * GIB else 3 / 4
        return round(total * share), f"estimate: macOS default GPU cap, {share:.0%} of memory"
    if gpu.vendor == "intel":
        return round(total * INTEL_IGPU_SHARE), "estimate: compute-runtime 80% of RAM"
    return total, "the whole shared pool"


def unified_free(gpu: Gpu, ram_usable: int | None) -> tuple[int | None, str]:
    """Free memory of a GPU that shares RAM with the CPU: one pool, counted once.

    Bounded by the runtime's budget and by the RAM still available (an AMD
    APU's BIOS carve-out is outside the RAM the OS sees, so it is added back).
    """
    budget, how = unified_budget(gpu)
    bounds = [v for v in (gpu.memory_free_bytes, budget) if v is not None]
    carve_out = 0
    if gpu.vendor == "amd" and gpu.shared_memory_bytes and gpu.memory_total_bytes:
        carve_out = max(0, gpu.memory_total_bytes - gpu.shared_memory_bytes)
    if ram_usable is not None:
        bounds.append(ram_usable + carve_out)
    free = min(bounds) if bounds else None
    return free, f"unified memory, shared with the CPU and counted once; GPU budget: {how}"


def _slot(gpu: Gpu, specs: tuple[GpuSpec, ...], ram_usable: int | None) -> GpuSlot:
    free, total, note = gpu.memory_free_bytes, gpu.memory_total_bytes, None
    if gpu.mig_enabled:
        # A CUDA process uses one MIG instance: the largest one is the best case.
        best = max(gpu.mig_devices, key=lambda m: m.memory_free_bytes or 0, default=None)
        if best is None:
            free, total, note = 0, 0, "MIG is enabled but no MIG instance exists"
        else:
            free, total = best.memory_free_bytes, best.memory_total_bytes
            note = "MIG enabled: one instance usable per process"
    bandwidth, source = gpu.memory_bandwidth_bytes_per_s, gpu.memory_bandwidth_source
    spec = match_gpu_spec(gpu.name, specs)
    if not bandwidth and spec is not None:
        bandwidth, source = spec.bandwidth_bytes_per_s, f"catalog ({spec.name})"
    flops = round(spec.fp16_tflops * 1e12) if spec is not None and spec.fp16_tflops else None
    if gpu.unified_memory:
        free, note = unified_free(gpu, ram_usable)
    return GpuSlot(
        index=gpu.index,
        name=gpu.name,
        vendor=gpu.vendor,
        total_bytes=total,
        free_bytes=free,
        compute_capability=gpu.compute_capability or (spec.compute_capability if spec else None),
        bandwidth_bytes_per_s=bandwidth,
        bandwidth_source=source,
        unified=gpu.unified_memory,
        note=note,
        fp16_flops_per_s=flops,
        runtimes=gpu.runtimes,
        arch=gpu.arch or (spec.gfx_target if spec else None),
    )


# fp32 FLOP per cycle per core: two FMA units x SIMD lanes x 2 (multiply and add).
FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("fma", 32), ("neon", 16), ("asimd", 16))


def cpu_flops(cores: float | None, mhz: float | None, flags: tuple[str, ...] | None) -> int | None:
    """Peak fp32 throughput of the usable cores, or None when the clock or cores are unknown."""
    if not cores or not mhz:
        return None
    have = set(flags or ())
    per_cycle = next((n for flag, n in FLOP_PER_CYCLE if flag in have), 8)
    return round(cores * mhz * 1e6 * per_cycle)


def capacity(
    host: Host,
    gpu_specs: tuple[GpuSpec, ...] = (),
    *,
    installed: frozenset[str] = frozenset(),
    ram_bandwidth: int | None = None,
    backends: tuple[Backend, ...] = (),
) -> Capacity:
    """What the estimator may use on `host`: each GPU's free memory and bandwidth (a
    missing figure filled from the catalog GPU table when the name matches), usable RAM
    (cgroup limits applied by the probe), disk, OS/CPU/Docker, installed frameworks.
    `ram_bandwidth` (bytes/s, from --ram-bandwidth) replaces the probed figure. Pure.
    """
    hw = host.hardware
    ram = hw.memory.usable_bytes
    system = (hw.os.system or "").lower() or None
    arch = hw.cpu.arch or ({"aarch64": "arm64"}.get(hw.os.machine or "", hw.os.machine))
    cores = hw.cpu.usable_cores or hw.cpu.logical_cores
    return Capacity(
        gpus=tuple(_slot(g, gpu_specs, ram) for g in hw.gpus),
        ram_usable_bytes=ram,
        ram_total_bytes=hw.memory.total_bytes,
        ram_bandwidth_bytes_per_s=ram_bandwidth or hw.memory.bandwidth_bytes_per_s,
        disk_free_bytes=hw.disk.free_bytes,
        disk_path=hw.disk.path,
        os=system,
        arch=arch,
        docker=hw.os.docker.usable,
        installed=installed,
        cpu_flags=frozenset(hw.cpu.flags) if hw.cpu.flags is not None else None,
        cpu_flops_per_s=cpu_flops(cores, hw.cpu.max_frequency_mhz, hw.cpu.flags),
        cpu_cores=cores,
        cpu_clock_hz=round(hw.cpu.max_frequency_mhz * 1e6) if hw.cpu.max_frequency_mhz else None,
        backends=backends,
    )
