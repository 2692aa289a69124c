"""CPU description: model, vendor, cores and the ISA flags inference builds care about.

Linux reads ``/proc/cpuinfo`` (under a configurable root, so tests use fixture
trees); macOS asks ``sysctl``. Flags are reported under canonical names so that
x86 and Arm read alike (``asimd`` -> ``neon``, ``asimddp`` -> ``dotprod``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from canirun.records import Record, record

# Linux /proc/cpuinfo flag -> canonical name, for the flags that decide which
# llama.cpp / PyTorch kernels run fast.
_LINUX_FLAGS = {
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "avx512f": "avx512f",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx_vnni": "avx_vnni",
    "amx_tile": "amx_tile",
    "amx_bf16": "amx_bf16",
    "amx_int8": "amx_int8",
    # Arm "Features" line
    "asimd": "neon",
    "sve": "sve",
    "sve2": "sve2",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "bf16": "bf16",
}

# macOS sysctl keys (hw.optional.*) -> canonical name.
_DARWIN_FLAGS = {
    "hw.optional.neon": "neon",
    "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.avx1_0": "avx",
    "hw.optional.avx2_0": "avx2",
    "hw.optional.fma": "fma",
    "hw.optional.f16c": "f16c",
    "hw.optional.avx512f": "avx512f",
    "hw.optional.avx512vnni": "avx512_vnni",
}

# ARM "CPU implementer" codes (Arm ARM, MIDR_EL1) for machines without a model name.
_ARM_IMPLEMENTERS = {
    "0x41": "ARM",
    "0x42": "Broadcom",
    "0x43": "Cavium",
    "0x46": "Fujitsu",
    "0x48": "HiSilicon",
    "0x4e": "NVIDIA",
    "0x50": "APM",
    "0x51": "Qualcomm",
    "0x61": "Apple",
    "0xc0": "Ampere",
}

# Arm Ltd. core designs ("CPU part" when the implementer is 0x41), as named in
# the Linux kernel's arch/arm64/include/asm/cputype.h and util-linux lscpu-arm.c.
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd05": "Cortex-A55",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
    "0xd8e": "Neoverse-N3",
    "0xd84": "Neoverse-V3",
}

_X86_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


@record(slots=True)
class CpuIdentity(Record):
    model: str | None
    vendor: str | None
    flags: tuple[str, ...] | None


def canonical_flags(raw: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({_LINUX_FLAGS[f] for f in raw if f in _LINUX_FLAGS}))


def parse_cpuinfo(text: str) -> CpuIdentity:
    """Read model, vendor and flags from the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key and key not in fields:
            fields[key] = value.strip()
    board = fields.get("model", "")  # x86: a number; Raspberry Pi and friends: the board name
    implementer = fields.get("cpu implementer", "").lower()
    part = fields.get("cpu part", "").lower()
    arm_core = _ARM_PARTS.get(part) if implementer == "0x41" else None
    model = (
        fields.get("model name")
        or (board if board and not board.isdigit() else None)
        or arm_core
        or fields.get("hardware")
        or fields.get("cpu model")
    )
    vendor_id = fields.get("vendor_id")
    vendor = _X86_VENDORS.get(vendor_id, vendor_id) if vendor_id else None
    if vendor is None and implementer:
        vendor = _ARM_IMPLEMENTERS.get(implementer, f"Arm implementer {implementer}")
    flag_line = fields.get("flags", fields.get("features"))
    flags = canonical_flags(flag_line.split()) if flag_line is not None else None
    return CpuIdentity(model, vendor, flags)


def read_linux_identity(root: Path) -> CpuIdentity:
    text = (root / "proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    return parse_cpuinfo(text)


Sysctl = Callable[[str], str | None]


def run_sysctl(key: str) -> str | None:
    """One `sysctl -n key` value, or None when the key does not exist."""
    import subprocess

    try:
        done = subprocess.run(
            ["sysctl", "-n", key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def read_darwin_identity(sysctl: Sysctl = run_sysctl) -> CpuIdentity:
    model = sysctl("machdep.cpu.brand_string")
    vendor = sysctl("machdep.cpu.vendor")
    vendor = _X86_VENDORS.get(vendor, vendor) if vendor else None
    if vendor is None and model and model.startswith("Apple"):
        vendor = "Apple"
    flags = tuple(sorted({name for key, name in _DARWIN_FLAGS.items() if sysctl(key) == "1"}))
    return CpuIdentity(model, vendor, flags)


def affinity_cores() -> int | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return len(getter(0))
    except OSError:
        return None


def usable_core_count(cpu_quota: float | None) -> int:
    """Cores this process can keep busy at once: logical cores, affinity and the
    cgroup CPU quota (rounded up: a 1.5-core quota still runs two threads)."""
    import math

    counts = [c for c in (os.cpu_count(), affinity_cores()) if c]
    if cpu_quota is not None and cpu_quota > 0:
        counts.append(math.ceil(cpu_quota))
    return max(1, min(counts, default=1))


def machine_arch() -> str | None:
    """Normalised CPU architecture: x86_64 or arm64 (aarch64 on Linux), else as reported."""
    if hasattr(os, "uname"):
        arch = os.uname().machine.lower()
    else:
        import platform

        arch = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(arch, arch or None)
