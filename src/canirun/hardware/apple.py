"""Apple silicon (macOS): chip, P/E cores, unified memory, GPU cores, Metal budget.

Sources, all read through one seam, ``run`` (argv -> stdout or None), so tests
replay recorded output of real Macs:

- ``sysctl``: ``hw.memsize`` (bytes), ``machdep.cpu.brand_string`` ("Apple M2
  Max"), ``hw.perflevelN.physicalcpu``/``.name`` (cores per performance level),
  ``iogpu.wired_limit_mb`` (an admin's override of the GPU's wired-memory cap,
  0 = default) and ``sysctl.proc_translated`` (1 under Rosetta).
- ``system_profiler SPDisplaysDataType -json`` (or its text form): GPU cores
  (``sppci_cores``) and the Metal family.
- Metal's ``recommendedMaxWorkingSetSize``: what the GPU may really wire, asked
  in a child Python through the Objective-C runtime (ctypes, no PyObjC), so a
  crash there cannot take the CLI down.

Commands run only on macOS, with timeouts and bounded output (``run_command``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence

from canirun.hardware.model import Gpu, ProbeIssue
from canirun.records import Record, record

Runner = Callable[[Sequence[str]], str | None]

_SOURCE = "apple"
MIB = 2**20
GIB = 2**30
_MAX_OUTPUT = 4 * MIB
_TIMEOUT_S = 15.0

SYSCTL_KEYS = (
    "hw.memsize",
    "machdep.cpu.brand_string",
    "hw.model",
    "hw.perflevel0.physicalcpu",
    "hw.perflevel0.name",
    "hw.perflevel1.physicalcpu",
    "hw.perflevel1.name",
    "iogpu.wired_limit_mb",
    "sysctl.proc_translated",
)
SYSTEM_PROFILER = ("system_profiler", "SPDisplaysDataType", "-json")

# Asks Metal for the working-set budget; prints "<bytes> <unified 0/1>".
METAL_QUERY = """
import ctypes
objc = ctypes.CDLL("/usr/lib/libobjc.A.dylib")
metal = ctypes.CDLL("/System/Library/Frameworks/Metal.framework/Metal")
metal.MTLCreateSystemDefaultDevice.restype = ctypes.c_void_p
objc.sel_registerName.restype = ctypes.c_void_p
objc.sel_registerName.argtypes = [ctypes.c_char_p]
u64 = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p)(("objc_msgSend", objc))
dev = metal.MTLCreateSystemDefaultDevice()
if dev:
    sel = objc.sel_registerName
    print(u64(dev, sel(b"recommendedMaxWorkingSetSize")), u64(dev, sel(b"hasUnifiedMemory")) & 1)
"""

# Metal GPU family by chip generation, as ggml's Metal backend logs it
# (M1 MTLGPUFamilyApple7, M2 Apple8, M3 and M4 Apple9; accelerators.md §2.4).
_FAMILY = {"M1": "apple7", "M2": "apple8", "M3": "apple9", "M4": "apple9"}


def run_command(argv: Sequence[str]) -> str | None:
    """stdout of a command (at most 4 MiB, 15 s), or None when it cannot run."""
    try:
        with subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        ) as proc:
            try:
                out, _ = proc.communicate(timeout=_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                return None
    except OSError:
        return None
    return out[:_MAX_OUTPUT].decode("utf-8", errors="replace")


def metal_query_argv() -> tuple[str, ...]:
    return (sys.executable, "-c", METAL_QUERY)


def parse_sysctl(text: str) -> dict[str, str]:
    """``key: value`` lines (``sysctl a b``) as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


@record(slots=True)
class Displays(Record):
    chip: str | None
    cores: int | None
    family: str | None


def parse_displays(text: str) -> Displays:
    """system_profiler's GPU entry, from its JSON (-json) or its text form."""
    try:
        data = json.loads(text)
    except ValueError:
        return _parse_displays_text(text)
    items = data.get("SPDisplaysDataType") if isinstance(data, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "Apple" not in str(item.get("sppci_model", "")):
            continue
        family = item.get("spdisplays_metalfamily") or item.get("spdisplays_mtlgpufamilysupport")
        match = re.search(r"(apple\d+|metal\d+)$", str(family or ""))
        return Displays(
            chip=str(item["sppci_model"]),
            cores=_int(item.get("sppci_cores")),
            family=match.group(1) if match else None,
        )
    return Displays(None, None, None)


def _parse_displays_text(text: str) -> Displays:
    chip = re.search(r"Chipset Model:\s*(Apple .+)", text)
    cores = re.search(r"Total Number of Cores:\s*(\d+)", text)
    return Displays(
        chip=chip.group(1).strip() if chip else None,
        cores=int(cores.group(1)) if cores else None,
        family=None,
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def parse_metal(text: str | None) -> int | None:
    parts = (text or "").split()
    value = _int(parts[0]) if parts else None
    return value if value and value > 0 else None


def default_working_set(memory: int) -> int:
    """macOS's default GPU cap where Metal cannot be asked: 2/3 of RAM up to 32 GiB,
    3/4 above (recommendedMaxWorkingSetSize as ggml logged it, accelerators.md §2.3)."""
    return memory * 2 // 3 if memory <= 32 * GIB else memory * 3 // 4


def _family(reported: str | None, generation: str | None) -> str | None:
    if reported and reported.startswith("apple"):
        return reported
    return _FAMILY.get(generation or "") or reported


@record(slots=True)
class AppleProbe(Record):
    gpu: Gpu | None
    performance_cores: int | None
    efficiency_cores: int | None
    issues: tuple[ProbeIssue, ...]


def _cores(values: dict[str, str]) -> tuple[int | None, int | None]:
    """(performance, efficiency) cores; M5's "Super" level counts as performance."""
    perf = eff = None
    for level in (0, 1):
        count = _int(values.get(f"hw.perflevel{level}.physicalcpu"))
        if count is None:
            continue
        name = values.get(f"hw.perflevel{level}.name") or ("Performance", "Efficiency")[level]
        if name == "Efficiency":
            eff = (eff or 0) + count
        else:
            perf = (perf or 0) + count
    return perf, eff


def _budget(memory: int, metal: int | None, wired_mb: int | None) -> tuple[int, str]:
    if metal:
        return metal, "metal:recommendedMaxWorkingSetSize"
    if wired_mb:
        # Metal passes a limit above RAM through; clamp it (llmfit does the same).
        return min(wired_mb * MIB, memory), "sysctl:iogpu.wired_limit_mb"
    share = "2/3" if memory <= 32 * GIB else "3/4"
    return default_working_set(memory), f"estimate: macOS default, {share} of RAM"


def probe_apple(run: Runner = run_command, available: int | None = None) -> AppleProbe:
    issues: list[ProbeIssue] = []
    values = parse_sysctl(run(("sysctl", *SYSCTL_KEYS)) or "")
    perf, eff = _cores(values)
    brand = values.get("machdep.cpu.brand_string", "")
    memory = _int(values.get("hw.memsize"))
    if values.get("sysctl.proc_translated") == "1":
        issues.append(
            ProbeIssue(
                _SOURCE, "Python runs under Rosetta (x86_64): native arm64 builds run faster"
            )
        )
    if not brand.startswith("Apple") or memory is None:
        if not brand.startswith("Apple"):
            issues.append(ProbeIssue(_SOURCE, "not an Apple silicon Mac: no Apple GPU", "info"))
        else:
            issues.append(ProbeIssue(_SOURCE, "sysctl hw.memsize could not be read"))
        return AppleProbe(None, perf, eff, tuple(issues))
    displays = parse_displays(run(SYSTEM_PROFILER) or "")
    if displays.cores is None:
        issues.append(ProbeIssue(_SOURCE, "system_profiler gave no GPU core count", "info"))
    metal = parse_metal(run(metal_query_argv()))
    wired = _int(values.get("iogpu.wired_limit_mb"))
    budget, source = _budget(memory, metal, wired)
    if not metal:
        issues.append(
            ProbeIssue(_SOURCE, f"Metal could not be asked; GPU budget from {source}", "info")
        )
    chip = displays.chip or brand
    generation = re.search(r"\b(M\d+)\b", chip)
    name = f"{chip} ({displays.cores}-core GPU)" if displays.cores else chip
    gpu = Gpu(
        vendor="apple",
        name=name,
        memory_total_bytes=memory,
        memory_free_bytes=min(available, memory) if available is not None else None,
        index=0,
        memory_source="sysctl:hw.memsize (unified)",
        usable_memory_bytes=budget,
        usable_memory_source=source,
        arch=_family(displays.family, generation.group(1) if generation else None),
        gpu_cores=displays.cores,
        unified_memory=True,
        runtimes=("metal", "mlx", "mps"),
    )
    return AppleProbe(gpu, perf, eff, tuple(issues))
