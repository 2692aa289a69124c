"""Frozen records describing a host, as probed or as read from a hardware file.

Plain dataclasses (no pydantic) so that ``canirun hardware --json`` stays fast;
the report models in ``canirun.report`` embed them, and pydantic validates them
when a file is read. Sizes are integer bytes. ``None`` always means "could not
be read" (or "not stated" in a hand-written file): nothing downstream may treat
it as "enough".
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Literal

from canirun.records import Record, record

# Hand-written files are validated with the same classes: unknown keys are errors.
_STRICT: Any = {"extra": "forbid"}

Severity = Literal["info", "warning"]
# Where a host's figures come from: probed here, read from a hardware file, or a
# what-if (--gpu/--vram/--ram changed them: no real machine has them).
Basis = Literal["probe", "file", "what-if"]


@record(slots=True)
class Cpu(Record):
    __pydantic_config__ = _STRICT

    model: str | None = None
    vendor: str | None = None
    arch: str | None = None
    physical_cores: int | None = None
    logical_cores: int | None = None
    # Cores this process may really use: affinity and cgroup quota applied.
    usable_cores: float | None = None
    quota_cores: float | None = None
    affinity_cores: int | None = None
    max_frequency_mhz: float | None = None
    # Instruction-set extensions that inference builds care about, as the OS
    # advertises them (canonical names: avx2, avx512f, amx_tile, neon, dotprod...).
    # None: not read; () means read, and none of them present.
    flags: tuple[str, ...] | None = None
    # Hybrid CPUs (Apple silicon, Intel P/E): cores per performance level.
    performance_cores: int | None = None
    efficiency_cores: int | None = None


@record(slots=True)
class Memory(Record):
    __pydantic_config__ = _STRICT

    total_bytes: int | None = None
    available_bytes: int | None = None
    # The container's (cgroup's) limit, None when there is none (or it is unreadable:
    # then `limit_unreadable` is true and nothing may count on "no limit").
    limit_bytes: int | None = None
    # What the cgroup already uses, less reclaimable page cache (working set).
    limit_used_bytes: int | None = None
    cgroup_version: int | None = None
    swap_total_bytes: int | None = None
    swap_free_bytes: int | None = None
    # RAM bandwidth for CPU speed estimates: "measured" (a copy on every usable core),
    # "file" or "flag"; None when not measured.
    bandwidth_bytes_per_s: int | None = None
    bandwidth_source: str | None = None
    limit_unreadable: bool = False

    @property
    def usable_bytes(self) -> int | None:
        """RAM a new process can count on: host available vs the cgroup's remaining room.

        Unknown (None) when the cgroup's limit could not be read, or a limit is set
        but what the cgroup already uses could not: neither counts as "no limit" or
        "nothing used".
        """
        if self.available_bytes is None or self.limit_unreadable:
            return None
        if self.limit_bytes is None:
            return self.available_bytes
        if self.limit_used_bytes is None:
            return None
        room = self.limit_bytes - self.limit_used_bytes
        return max(0, min(self.available_bytes, room))


@record(slots=True)
class Disk(Record):
    __pydantic_config__ = _STRICT

    path: str | None = None
    # The directory actually measured: `path` itself, or its nearest existing parent.
    measured_path: str | None = None
    exists: bool | None = None
    total_bytes: int | None = None
    free_bytes: int | None = None


@record(slots=True)
class MigDevice(Record):
    __pydantic_config__ = _STRICT

    index: int
    uuid: str | None = None
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None


@record(slots=True)
class Gpu(Record):
    __pydantic_config__ = _STRICT

    vendor: str
    name: str
    memory_total_bytes: int | None
    index: int | None = None
    uuid: str | None = None
    memory_free_bytes: int | None = None
    memory_used_bytes: int | None = None
    compute_capability: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    memory_bus_width_bits: int | None = None
    memory_max_clock_mhz: int | None = None
    memory_bandwidth_bytes_per_s: int | None = None
    # Where the bandwidth figure came from: "nvml" (bus width x clock), "catalog", "file".
    memory_bandwidth_source: str | None = None
    pcie_generation: int | None = None
    pcie_width: int | None = None
    mig_enabled: bool | None = None
    mig_devices: tuple[MigDevice, ...] = ()
    # Apple silicon, APUs, iGPUs, Jetson and GB10 share one memory pool with the
    # CPU: GPU and CPU then draw from the same bytes, which are counted once.
    unified_memory: bool = False
    # A stable identity that two vendors cannot share: the PCI address
    # ("0000:03:00.0"); NVIDIA GPUs also have their UUID.
    pci_address: str | None = None
    # Where memory_total/free came from ("sysfs:mem_info_vram_total", "nvml", ...).
    memory_source: str | None = None
    # System RAM the driver lets the GPU map besides its own memory (AMD GTT
    # clamped by TTM, Intel iGPU shared memory), and where that came from.
    shared_memory_bytes: int | None = None
    shared_memory_source: str | None = None
    # What a runtime will really let one process allocate on this GPU (Metal's
    # recommendedMaxWorkingSetSize, the KFD pool HIP reports, ...), and its source.
    usable_memory_bytes: int | None = None
    usable_memory_source: str | None = None
    # The architecture in the vendor's own terms: AMD gfx target ("gfx1100"),
    # Apple GPU family ("apple9"), Intel driver generation ("xe"), NVIDIA SoC.
    arch: str | None = None
    gpu_cores: int | None = None  # Apple GPU cores, AMD compute units
    # The kernel driver ("amdgpu", "xe", "i915") and the compute runtime version
    # found (ROCm, L4T); CUDA keeps its own field.
    kernel_driver: str | None = None
    runtime_version: str | None = None
    # GPU runtimes that can drive it here: "cuda", "rocm", "metal", "mlx", "mps",
    # "vulkan", "sycl", "xpu", "openvino". Empty: not probed (take the vendor's).
    runtimes: tuple[str, ...] = ()


@record(slots=True)
class Docker(Record):
    __pydantic_config__ = _STRICT

    cli: bool | None = None
    daemon: bool | None = None
    detail: str | None = None

    @property
    def usable(self) -> bool | None:
        if self.cli is False or self.daemon is False:
            return False
        if self.cli and self.daemon:
            return True
        return None


@record(slots=True)
class OsInfo(Record):
    __pydantic_config__ = _STRICT

    system: str | None = None
    release: str | None = None
    machine: str | None = None
    distribution: str | None = None
    libc: str | None = None
    python_version: str | None = None
    container: bool | None = None
    container_kind: str | None = None
    docker: Docker = field(default_factory=Docker)


@record(slots=True)
class Software(Record):
    """Serving frameworks found on the machine the record describes (not the one reading it)."""

    __pydantic_config__ = _STRICT

    # Catalog ids of frameworks whose command is on PATH or whose Python package is
    # installed; None: not looked for (a hand-written file, or a what-if).
    frameworks: tuple[str, ...] | None = None


@record(slots=True)
class Hardware(Record):
    __pydantic_config__ = _STRICT

    cpu: Cpu = field(default_factory=Cpu)
    memory: Memory = field(default_factory=Memory)
    disk: Disk = field(default_factory=Disk)
    gpus: tuple[Gpu, ...] = ()
    os: OsInfo = field(default_factory=OsInfo)
    software: Software = field(default_factory=Software)
    # Dotted paths of figures that were assumed rather than read
    # (e.g. "memory.available_bytes" taken from the total of a hand-written file).
    assumed: tuple[str, ...] = ()


@record(slots=True)
class Machine(Record):
    __pydantic_config__ = _STRICT

    hostname: str | None = None
    # A salted SHA-256 of the platform machine id: stable, but not the raw id.
    id: str | None = None


@record(slots=True)
class ProbeIssue(Record):
    __pydantic_config__ = _STRICT

    source: str
    message: str
    severity: Severity = "warning"


@record(slots=True)
class Host(Record):
    """Everything the probe (or a hardware file) says about one machine."""

    hardware: Hardware
    machine: Machine = field(default_factory=Machine)
    issues: tuple[ProbeIssue, ...] = ()
    basis: Basis = "probe"


def to_jsonable(value: Any) -> Any:
    """A record as JSON-ready dicts and lists, the same shape pydantic dumps."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    return value
