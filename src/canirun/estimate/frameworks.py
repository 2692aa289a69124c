"""Can each framework run on this machine, and if not, why not."""

from __future__ import annotations

from typing import Any, get_args

from canirun.catalog.schema import CpuArch, Framework, Os
from canirun.estimate.capacity import Capacity
from canirun.estimate.placement import a_gpu_of, usable_gpus
from canirun.records import Record, record

_STRICT: Any = {"extra": "forbid"}


@record(slots=True)
class FrameworkStatus(Record):
    __pydantic_config__ = _STRICT

    id: str
    name: str
    runs_here: bool | None
    installed: bool
    # What it would run on here: "GPU 0 (NVIDIA ...)", "CPU".
    devices: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    # Catalog variants it could serve here (filled in by scan/frameworks).
    models: tuple[str, ...] = ()


def platform_doubts(
    name: str, os: list[str], arch: list[str], docker: bool, cap: Capacity
) -> tuple[str, ...]:
    """Why it cannot be told whether something runs here: an OS, CPU architecture or
    Docker state that is unknown while it is not supported everywhere. Never a pass."""
    doubts = []
    if cap.os is None and set(os) != set(get_args(Os)):
        doubts.append(f"OS unknown: {name} runs on {', '.join(os)} only")
    if cap.arch is None and set(arch) != set(get_args(CpuArch)):
        doubts.append(f"CPU architecture unknown: {name} is built for {', '.join(arch)} only")
    if docker and cap.docker is None:
        doubts.append(f"Docker state unknown: {name} needs Docker")
    return tuple(doubts)


def framework_status(fw: Framework, cap: Capacity) -> FrameworkStatus:
    installed = fw.id in cap.installed
    if not fw.local:
        hosted = ("a hosted service: nothing runs on this machine",)
        return FrameworkStatus(fw.id, fw.name, False, installed, reasons=hosted)
    blockers = []
    if cap.os is not None and cap.os not in fw.os:
        blockers.append(f"runs on {', '.join(fw.os)}, not {cap.os}")
    if cap.arch is not None and cap.arch not in fw.arch:
        blockers.append(f"built for {', '.join(fw.arch)}, not {cap.arch}")
    if fw.needs_docker and cap.docker is False:
        blockers.append("needs Docker, which is not usable here")
    gpus, notes, doubts = usable_gpus(cap, fw)
    devices = [s.label for s in gpus]
    if "cpu" in fw.accelerators and fw.cpu_only_ok:
        devices.append("CPU")
    if not devices and not doubts:
        wanted = a_gpu_of(fw.accelerators)
        blockers.append(f"needs {wanted}" + ("" if not notes else f" ({'; '.join(notes)})"))
    if blockers:
        return FrameworkStatus(fw.id, fw.name, False, installed, reasons=tuple(blockers))
    reasons = platform_doubts(fw.name, list(fw.os), list(fw.arch), fw.needs_docker, cap)
    if not devices:
        reasons += tuple(why for _, why in doubts)
    runs = None if reasons else True
    return FrameworkStatus(
        fw.id, fw.name, runs, installed, devices=tuple(devices), reasons=reasons + tuple(notes)
    )
