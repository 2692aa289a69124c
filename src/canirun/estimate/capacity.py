"""The machine as the estimator sees it: memory pools, bandwidths, what is installed.

Built from a probed (or file-described) ``Host``; pure apart from reading the
catalog's GPU table, which fills in a bandwidth NVML could not read and marks
it as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from canirun.catalog.schema import Gpu as GpuSpec
from canirun.hardware.model import Gpu, Host

# macOS lets the GPU wire only part of unified memory (recommendedMaxWorkingSetSize,
# about two thirds to three quarters of RAM); canirun plans with 2/3. Estimate.
UNIFIED_GPU_SHARE = 2 / 3


@dataclass(frozen=True, slots=True)
class GpuSlot:
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

    @property
    def label(self) -> str:
        return f"GPU {self.index} ({self.name})" if self.index is not None else self.name


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """Another machine of the cluster this one is rated with (multi-node placement)."""

    name: str
    gpus: tuple[GpuSlot, ...]


@dataclass(frozen=True, slots=True)
class Capacity:
    gpus: tuple[GpuSlot, ...]
    ram_usable_bytes: int | None
    ram_total_bytes: int | None
    ram_bandwidth_bytes_per_s: int | None
    disk_free_bytes: int | None
    disk_path: str | None
    os: str | None  # linux, darwin, windows
    arch: str | None  # x86_64, arm64
    docker: bool | None
    installed: frozenset[str] = field(default_factory=frozenset)
    notes: tuple[str, ...] = ()
    # Every node of the cluster, this one included; empty when rating one machine.
    nodes: tuple[ClusterNode, ...] = ()


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def match_gpu_spec(name: str, specs: tuple[GpuSpec, ...]) -> GpuSpec | None:
    """The catalog GPU a probed name denotes: the longest alias or name contained in it."""
    target = f" {_norm(name)} "
    best: tuple[int, GpuSpec] | None = None
    for spec in specs:
        for candidate in (spec.name, *spec.aliases):
            key = _norm(candidate)
            if key and f" {key} " in target and (best is None or len(key) > best[0]):
                best = (len(key), spec)
    return best[1] if best else None


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
    if not bandwidth:
        spec = match_gpu_spec(gpu.name, specs)
        if spec is not None:
            bandwidth, source = spec.bandwidth_bytes_per_s, f"catalog ({spec.name})"
    if gpu.unified_memory and free is not None:
        # One pool for CPU and GPU: never count it twice, and respect macOS's cap.
        cap = [v for v in (free, ram_usable) if v is not None]
        free = round(min(cap) * UNIFIED_GPU_SHARE)
        note = "unified memory: shared with the CPU, GPU share capped at 2/3 (estimate)"
    return GpuSlot(
        index=gpu.index,
        name=gpu.name,
        vendor=gpu.vendor,
        total_bytes=total,
        free_bytes=free,
        compute_capability=gpu.compute_capability,
        bandwidth_bytes_per_s=bandwidth,
        bandwidth_source=source,
        unified=gpu.unified_memory,
        note=note,
    )


def capacity(
    host: Host,
    gpu_specs: tuple[GpuSpec, ...] = (),
    *,
    installed: frozenset[str] = frozenset(),
    ram_bandwidth: int | None = None,
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
    )
