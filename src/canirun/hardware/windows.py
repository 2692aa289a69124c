"""Windows: CPU name and ISA flags, and AMD/Intel GPUs from the registry.

- CPU: ``HKLM\\HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0``
  (ProcessorNameString, VendorIdentifier); flags from kernel32's
  ``IsProcessorFeaturePresent`` (the OS's view of cpuid), since there is no
  /proc/cpuinfo.
- GPUs: the display-adapter class key ``{4d36e968-e325-11ce-bfc1-08002be10318}``
  (DriverDesc, MatchingDeviceId, DriverVersion and the 64-bit
  ``HardwareInformation.qwMemorySize``). Win32_VideoController.AdapterRAM is never
  used: it is a uint32 and shows a 32 GB card as 4 GB (llmfit #830). NVIDIA
  adapters are left to NVML. The shared (WDDM) limit needs DXGI, which is not
  read yet: it is a probe note.

Seams: ``registry`` (key path, value name -> value or None), ``subkeys`` (key path
-> names) and ``feature_present`` (PF_ constant -> bool), so tests run anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from canirun.hardware.cpu import CpuIdentity
from canirun.hardware.model import Gpu, ProbeIssue
from canirun.records import Record, record

Registry = Callable[[str, str], object]
Subkeys = Callable[[str], list[str]]
FeaturePresent = Callable[[int], bool]

_CPU_KEY = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
DISPLAY_CLASS = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"
_SOURCE = "windows-registry"

# IsProcessorFeaturePresent constants (winnt.h, Microsoft's IsProcessorFeaturePresent docs).
PF_FLAGS = {
    39: "avx",  # PF_AVX_INSTRUCTIONS_AVAILABLE
    40: "avx2",  # PF_AVX2_INSTRUCTIONS_AVAILABLE
    41: "avx512f",  # PF_AVX512F_INSTRUCTIONS_AVAILABLE
    29: "neon",  # PF_ARM_V8_INSTRUCTIONS_AVAILABLE (Advanced SIMD is part of Armv8-A)
    43: "dotprod",  # PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
}
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}
_PCI_VENDORS = {"1002": "amd", "8086": "intel", "10de": "nvidia"}
# Drivers write MemorySize in bytes although the WDK says MB; tiny values are MB or junk.
_MIN_PLAUSIBLE = 64 * 2**20
# A 32-bit size at or above 0xFFF00000 is saturated (AdapterRAM shows 4293918720 for
# a 32 GB card, llmfit #830): "4 GiB or more", not a size.
_SATURATED_DWORD = 0xFFF00000


def read_windows_identity(registry: Registry, feature_present: FeaturePresent) -> CpuIdentity:
    name = registry(_CPU_KEY, "ProcessorNameString")
    vendor = registry(_CPU_KEY, "VendorIdentifier")
    flags = tuple(sorted({flag for pf, flag in PF_FLAGS.items() if feature_present(pf)}))
    vendor_text = _VENDORS.get(str(vendor), str(vendor)) if vendor else None
    return CpuIdentity(str(name).strip() if name else None, vendor_text, flags)


@record(slots=True)
class Adapter(Record):
    name: str
    vendor: str | None
    memory: int | None
    driver: str | None


def _memory(raw: object) -> int | None:
    if isinstance(raw, bytes):
        raw = int.from_bytes(raw[:8], "little") if raw else None
    if isinstance(raw, int) and raw >= _MIN_PLAUSIBLE:
        return raw
    return None


def read_adapters(registry: Registry, subkeys: Subkeys) -> list[Adapter]:
    adapters = []
    for sub in subkeys(DISPLAY_CLASS):
        if not sub.isdigit():  # "Properties" and friends: not adapters (and access denied)
            continue
        key = f"{DISPLAY_CLASS}\\{sub}"
        name = registry(key, "DriverDesc")
        if not name:
            continue
        device_id = str(registry(key, "MatchingDeviceId") or "").lower()
        match = re.search(r"ven_([0-9a-f]{4})", device_id)
        memory = _memory(registry(key, "HardwareInformation.qwMemorySize"))
        if memory is None:
            dword = _memory(registry(key, "HardwareInformation.MemorySize"))
            memory = dword if dword is not None and dword < _SATURATED_DWORD else None
        adapters.append(
            Adapter(
                name=str(name),
                vendor=_PCI_VENDORS.get(match.group(1)) if match else None,
                memory=memory,
                driver=str(registry(key, "DriverVersion") or "") or None,
            )
        )
    return adapters


def _integrated(adapter: Adapter) -> bool:
    """Names the integrated parts carry: "AMD Radeon(TM) Graphics", "Radeon 780M /
    8060S Graphics", Intel UHD/Iris/"Arc(TM) Graphics" (Intel's discrete Arcs have a model)."""
    name = adapter.name
    if adapter.vendor == "amd":
        return bool(re.search(r"Radeon(\(TM\))? (\d{3,4}[MS] )?Graphics$", name))
    if adapter.vendor == "intel":
        return not re.search(r"Arc\(TM\) [AB]\d{3}", name)
    return False


def probe_windows_gpus(
    registry: Registry, subkeys: Subkeys
) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]:
    gpus, issues = [], []
    for adapter in read_adapters(registry, subkeys):
        if adapter.vendor not in ("amd", "intel"):
            continue  # NVIDIA comes from NVML; "Microsoft Basic Render Driver" is no GPU
        unified = _integrated(adapter)
        gpus.append(
            Gpu(
                vendor=adapter.vendor,
                name=adapter.name,
                memory_total_bytes=adapter.memory,
                memory_source="registry:HardwareInformation.qwMemorySize"
                + (" (the carve-out only)" if unified else ""),
                driver_version=adapter.driver,
                unified_memory=unified,
                runtimes=("vulkan",) if adapter.vendor == "intel" else ("rocm", "vulkan"),
            )
        )
        what = "its WDDM shared limit" if unified else "its free memory"
        issues.append(
            ProbeIssue(_SOURCE, f"{adapter.name}: {what} needs DXGI, not read yet", "info")
        )
    return tuple(gpus), tuple(issues)


def winreg_reader() -> tuple[Registry, Subkeys]:
    """The real registry (Windows only): HKEY_LOCAL_MACHINE reads that never raise."""
    import importlib

    # Looked up at run time: the stubs hide winreg off Windows, where this never runs.
    winreg: Any = importlib.import_module("winreg")

    def value(key: str, name: str) -> object:
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
                return winreg.QueryValueEx(handle, name)[0]
        except OSError:
            return None

    def names(key: str) -> list[str]:
        out = []
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
                for i in range(1024):
                    try:
                        out.append(winreg.EnumKey(handle, i))
                    except OSError:
                        break
        except OSError:
            pass
        return out

    return value, names


def kernel32_features() -> FeaturePresent:
    import ctypes

    kernel32: Any = getattr(ctypes, "windll").kernel32  # noqa: B009 (Windows-only attribute)

    def present(feature: int) -> bool:
        return bool(kernel32.IsProcessorFeaturePresent(feature))

    return present
