"""NVIDIA GPUs through NVML. The only module that imports ``pynvml`` (nvidia-ml-py).

Every NVML call goes through one chokepoint (``_Nvml.call``) that turns NVML
errors into probe issues: "not supported" leaves that one figure ``None``, a lost
GPU drops that GPU, and a library or driver problem ends the NVIDIA probe with
a readable reason. NVML is initialised lazily, only when a probe runs, and
always shut down afterwards.

``probe_gpus`` takes the NVML module as a parameter: tests pass a scripted fake
with the same functions, constants and error class.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

from canirun.hardware.model import Gpu, Memory, MigDevice, ProbeIssue, Severity
from canirun.records import Record, record

_SOURCE = "nvml"


class _GpuLost(Exception):
    pass


class _Nvml:
    """A thin session over the NVML module that records problems instead of raising."""

    def __init__(self, nvml: Any, issues: list[ProbeIssue]) -> None:
        self.nvml = nvml
        self.issues = issues
        self.last_not_supported = False

    def code(self, name: str) -> int | None:
        value = getattr(self.nvml, name, None)
        return value if isinstance(value, int) else None

    def is_error(self, exc: BaseException, name: str) -> bool:
        return getattr(exc, "value", None) == self.code(name)

    def call(self, what: str, fn_name: str, *args: Any) -> Any:
        fn = getattr(self.nvml, fn_name, None)
        if fn is None:
            self.issues.append(
                ProbeIssue(_SOURCE, f"{what}: {fn_name} is not in this nvidia-ml-py", "info")
            )
            return None
        try:
            return fn(*args)
        except self.nvml.NVMLError as exc:
            if self.is_error(exc, "NVML_ERROR_GPU_IS_LOST"):
                raise _GpuLost(str(exc)) from exc
            self.last_not_supported = self.is_error(exc, "NVML_ERROR_NOT_SUPPORTED")
            severity: Severity = "info" if self.last_not_supported else "warning"
            self.issues.append(ProbeIssue(_SOURCE, f"{what}: {exc}", severity))
            return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _cuda_version(raw: Any) -> str | None:
    if not isinstance(raw, int) or raw <= 0:
        return None
    return f"{raw // 1000}.{(raw % 1000) // 10}"


def peak_bandwidth(bus_width_bits: int | None, max_mem_clock_mhz: int | None) -> int | None:
    """Bytes/s = bus width in bytes x memory clock x 2 (double data rate).

    NVML's memory clock makes this hold for GDDR5/6/6X and HBM alike: RTX 4090
    384 bit x 10501 MHz -> 1008 GB/s; H100 SXM 5120 bit x 2619 MHz -> 3.35 TB/s.
    """
    if not bus_width_bits or not max_mem_clock_mhz:
        return None
    return bus_width_bits // 8 * max_mem_clock_mhz * 1_000_000 * 2


def _memory(s: _Nvml, handle: Any, label: str) -> Any:
    """Memory info, v2 where the driver has it (its `used` excludes reserved memory)."""
    version = getattr(s.nvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            return s.nvml.nvmlDeviceGetMemoryInfo(handle, version=version)
        except s.nvml.NVMLError as exc:
            if s.is_error(exc, "NVML_ERROR_GPU_IS_LOST"):
                raise _GpuLost(str(exc)) from exc
        except TypeError:
            pass  # an old binding without the version argument
    return s.call(f"{label} memory", "nvmlDeviceGetMemoryInfo", handle)


def _mig_devices(s: _Nvml, handle: Any, label: str) -> tuple[bool | None, tuple[MigDevice, ...]]:
    mode = s.call(f"{label} MIG mode", "nvmlDeviceGetMigMode", handle)
    if mode is None:
        return None, ()
    current = mode[0] if isinstance(mode, (tuple, list)) else mode
    if current != s.code("NVML_DEVICE_MIG_ENABLE"):
        return False, ()
    count = s.call(f"{label} MIG device count", "nvmlDeviceGetMaxMigDeviceCount", handle)
    if count is None:
        # The instances could not be listed: that is not "no instance" (a GPU with no
        # room). One instance of unknown size stands for them, so the GPU is unknown.
        return True, (MigDevice(index=0),)
    devices = []
    for j in range(min(count, 64) if isinstance(count, int) else 0):
        try:
            mig = s.nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except s.nvml.NVMLError:
            continue  # slots without a MIG instance report NOT_FOUND
        mem = s.call(f"{label} MIG {j} memory", "nvmlDeviceGetMemoryInfo", mig)
        devices.append(
            MigDevice(
                index=j,
                uuid=_text(s.call(f"{label} MIG {j} UUID", "nvmlDeviceGetUUID", mig)),
                memory_total_bytes=mem.total if mem is not None else None,
                memory_free_bytes=mem.free if mem is not None else None,
            )
        )
    return True, tuple(devices)


@record(slots=True)
class _Pool(Record):
    total: int | None
    free: int | None
    used: int | None
    source: str
    unified: bool = False


def _pool(s: _Nvml, handle: Any, label: str, system: Memory | None) -> _Pool:
    """The GPU's memory; on GB10 (DGX Spark) and other coherent SoCs NVML answers
    "not supported", and the GPU's memory is the system's RAM (nvitop's fallback)."""
    s.last_not_supported = False
    mem = _memory(s, handle, label)
    if mem is not None:
        return _Pool(mem.total, mem.free, mem.used, "nvml")
    if s.last_not_supported and system is not None and system.total_bytes:
        s.issues.append(
            ProbeIssue(_SOURCE, f"{label}: unified memory: GPU memory is the system's RAM", "info")
        )
        return _Pool(
            system.total_bytes,
            system.available_bytes,
            None,
            "system RAM (NVML memory not supported: unified)",
            unified=True,
        )
    return _Pool(None, None, None, "nvml")


def _device(
    s: _Nvml, index: int, driver: str | None, cuda: str | None, system: Memory | None = None
) -> Gpu:
    label = f"GPU {index}"
    handle = s.nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(s.call(f"{label} name", "nvmlDeviceGetName", handle)) or "NVIDIA GPU"
    mem = _pool(s, handle, label, system)
    cc = s.call(f"{label} compute capability", "nvmlDeviceGetCudaComputeCapability", handle)
    bus = s.call(f"{label} memory bus width", "nvmlDeviceGetMemoryBusWidth", handle)
    clock = s.call(
        f"{label} max memory clock", "nvmlDeviceGetMaxClockInfo", handle, s.code("NVML_CLOCK_MEM")
    )
    bandwidth = peak_bandwidth(bus, clock)
    mig_enabled, migs = _mig_devices(s, handle, label)
    return Gpu(
        vendor="nvidia",
        name=name,
        index=index,
        uuid=_text(s.call(f"{label} UUID", "nvmlDeviceGetUUID", handle)),
        memory_total_bytes=mem.total,
        memory_free_bytes=mem.free,
        memory_used_bytes=mem.used,
        memory_source=mem.source if mem.total is not None else None,
        unified_memory=mem.unified,
        runtimes=("cuda", "vulkan"),
        compute_capability=f"{cc[0]}.{cc[1]}" if cc is not None else None,
        driver_version=driver,
        cuda_version=cuda,
        memory_bus_width_bits=bus,
        memory_max_clock_mhz=clock,
        memory_bandwidth_bytes_per_s=bandwidth,
        memory_bandwidth_source="nvml" if bandwidth else None,
        pcie_generation=s.call(
            f"{label} PCIe generation", "nvmlDeviceGetMaxPcieLinkGeneration", handle
        ),
        pcie_width=s.call(f"{label} PCIe width", "nvmlDeviceGetMaxPcieLinkWidth", handle),
        mig_enabled=mig_enabled,
        mig_devices=migs,
    )


def _init_failure(s: _Nvml, exc: BaseException) -> ProbeIssue:
    if s.is_error(exc, "NVML_ERROR_LIBRARY_NOT_FOUND"):
        return ProbeIssue(_SOURCE, _NO_DRIVER, "info")
    if s.is_error(exc, "NVML_ERROR_DRIVER_NOT_LOADED"):
        return ProbeIssue(_SOURCE, "the NVIDIA driver is installed but not loaded")
    if s.is_error(exc, "NVML_ERROR_LIB_RM_VERSION_MISMATCH"):
        return ProbeIssue(
            _SOURCE, "NVML and the loaded driver differ in version (reboot after a driver update?)"
        )
    if s.is_error(exc, "NVML_ERROR_NO_PERMISSION"):
        return ProbeIssue(_SOURCE, "no permission to open the NVIDIA devices")
    return ProbeIssue(_SOURCE, f"NVML could not start: {exc}")


def _nvml_library_missing() -> bool:
    """True when the NVML library surely cannot load, so ``pynvml`` need not be imported.

    Importing pynvml costs more than the whole rest of a GPU-less probe. On
    Linux NVML is ``libnvidia-ml.so.1`` (the name pynvml itself loads); macOS
    has had no NVIDIA driver since 10.13. Elsewhere pynvml decides.
    """
    if sys.platform == "darwin":
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        _dlopen("libnvidia-ml.so.1")
    except OSError:
        return True
    return False


def _dlopen(name: str) -> object:
    """``ctypes.CDLL(name)``'s load, through ctypes' C module alone where it has one:
    importing ``ctypes`` itself costs ~1.2 ms of every probe (issue 15)."""
    try:
        from _ctypes import dlopen  # what ctypes.CDLL calls, with the same default mode
    except ImportError:
        import ctypes

        return ctypes.CDLL(name)
    return dlopen(name, 0)  # ctypes.DEFAULT_MODE on Linux (RTLD_LOCAL); RTLD_NOW is added


_NO_DRIVER = "no NVIDIA driver: the NVML library (libnvidia-ml) was not found"


class NvmlUnavailable(Exception):
    """NVML cannot be used at all; the message says why."""

    def __init__(self, issue: ProbeIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def load_nvml() -> ModuleType:
    """Import the NVML binding: the one place in canirun that touches ``pynvml``.

    Tests replace this function to inject a scripted fake NVML.
    """
    if _nvml_library_missing():
        raise NvmlUnavailable(ProbeIssue(_SOURCE, _NO_DRIVER, "info"))
    try:
        import pynvml
    except ImportError:
        msg = "nvidia-ml-py is not installed: NVIDIA GPUs cannot be read"
        raise NvmlUnavailable(ProbeIssue(_SOURCE, msg)) from None
    module: ModuleType = pynvml
    return module


def probe_gpus(
    nvml: ModuleType | Any | None = None,
    env: Mapping[str, str] = os.environ,
    system: Memory | None = None,
) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]:
    """All NVIDIA GPUs this process may use, and what went wrong reading them."""
    issues: list[ProbeIssue] = []
    if nvml is None:
        try:
            nvml = load_nvml()
        except NvmlUnavailable as exc:
            return (), (exc.issue,)
    s = _Nvml(nvml, issues)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return (), (_init_failure(s, exc),)
    try:
        gpus = _probe_devices(s, system)
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    gpus = apply_visible_devices(gpus, env, issues)
    return tuple(gpus), tuple(issues)


# More than any machine has; a driver answering more (a corrupt count) is not
# walked device by device for ever.
MAX_DEVICES = 1024


def _system_call(s: _Nvml, what: str, fn_name: str) -> Any:
    """A call about the driver, not one GPU: a "GPU is lost" answer is only a missing figure."""
    try:
        return s.call(what, fn_name)
    except _GpuLost as exc:
        s.issues.append(ProbeIssue(_SOURCE, f"{what}: {exc} (a GPU fell off the bus?)"))
        return None


def _probe_devices(s: _Nvml, system: Memory | None = None) -> list[Gpu]:
    count = _system_call(s, "device count", "nvmlDeviceGetCount")
    if not isinstance(count, int) or count <= 0:
        return []
    driver = _text(_system_call(s, "driver version", "nvmlSystemGetDriverVersion"))
    cuda_fn = (
        "nvmlSystemGetCudaDriverVersion_v2"
        if hasattr(s.nvml, "nvmlSystemGetCudaDriverVersion_v2")
        else "nvmlSystemGetCudaDriverVersion"
    )
    cuda = _cuda_version(_system_call(s, "CUDA driver version", cuda_fn))
    gpus = []
    for index in range(min(count, MAX_DEVICES)):
        try:
            gpus.append(_device(s, index, driver, cuda, system))
        except _GpuLost as exc:
            s.issues.append(ProbeIssue(_SOURCE, f"GPU {index} was lost while probing: {exc}"))
        except s.nvml.NVMLError as exc:
            s.issues.append(ProbeIssue(_SOURCE, f"GPU {index} could not be opened: {exc}"))
    return gpus


def apply_visible_devices(
    gpus: list[Gpu], env: Mapping[str, str], issues: list[ProbeIssue]
) -> list[Gpu]:
    """Keep the GPUs that CUDA_VISIBLE_DEVICES lets CUDA programs see, in its order.

    CUDA's rules: entries are indices or (prefixes of) GPU-/MIG- UUIDs; the list
    stops at the first entry that matches nothing; an empty value hides all.
    """
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None or not gpus:
        return gpus
    chosen: list[Gpu] = []
    for token in (t.strip() for t in value.split(",")):
        match = _match_token(token, gpus)
        if match is None or match in chosen:
            break
        chosen.append(match)
    hidden = len(gpus) - len(chosen)
    if hidden:
        issues.append(
            ProbeIssue(
                "cuda-visible-devices",
                f"CUDA_VISIBLE_DEVICES={value!r} hides {hidden} of {len(gpus)} GPUs",
                "info",
            )
        )
    names = {g.name for g in gpus}
    uses_index = any(_is_index(t.strip()) for t in value.split(","))
    if uses_index and len(names) > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        issues.append(
            ProbeIssue(
                "cuda-visible-devices",
                "indices read in PCI bus order (nvidia-smi's); CUDA orders fastest first "
                "unless CUDA_DEVICE_ORDER=PCI_BUS_ID",
                "info",
            )
        )
    return chosen


def _is_index(token: str) -> bool:
    # ASCII only: str.isdigit() is true for "²" and "٣", which int() refuses or misreads.
    return token.isascii() and token.isdigit() and len(token) < 10


def _match_token(token: str, gpus: list[Gpu]) -> Gpu | None:
    if _is_index(token):
        return next((g for g in gpus if g.index == int(token)), None)
    if token.startswith("GPU-"):
        hits = [g for g in gpus if g.uuid and g.uuid.startswith(token)]
        return hits[0] if len(hits) == 1 else None
    if token.startswith("MIG-"):
        for g in gpus:
            migs = [m for m in g.mig_devices if m.uuid and m.uuid.startswith(token)]
            if len(migs) == 1:
                return replace(g, mig_devices=tuple(migs))
    return None
