"""The hardware probe: one call, ``probe()``, returns a frozen ``Host``.

Backends (``system`` for psutil, /proc and cgroups; ``nvidia`` for NVML) never
raise past this facade: whatever they cannot read becomes a ``ProbeIssue`` and
a ``None`` figure. Nothing is probed at import time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canirun.hardware.model import Hardware, Host, ProbeIssue, Software

if TYPE_CHECKING:
    from canirun.hardware.software import DetectSpec


def probe(
    models_dir: Path | None = None,
    *,
    root: Path = Path("/"),
    nvml: Any | None = None,
    env: Mapping[str, str] = os.environ,
    measure_bandwidth: bool = False,
    detect: Sequence[DetectSpec] | None = None,
) -> Host:
    """Probe this machine. ``root``, ``nvml`` and ``env`` are seams for tests.

    ``measure_bandwidth`` adds a ~0.1 s RAM copy test for CPU speed estimates;
    ``detect`` (from the catalog) says how to spot installed serving frameworks.
    """
    from canirun.hardware import system
    from canirun.hardware.cgroup import read_cgroup_limits
    from canirun.hardware.nvidia import probe_gpus

    issues: list[ProbeIssue] = []
    limits = read_cgroup_limits(root)
    issues += [ProbeIssue("cgroup", p) for p in limits.problems]
    cpu = system.probe_cpu(root, limits, issues)
    memory = system.probe_memory(limits, issues)
    if measure_bandwidth:
        from canirun.hardware.bandwidth import measure_copy_bandwidth

        measured = measure_copy_bandwidth()
        memory = dataclasses.replace(
            memory,
            bandwidth_bytes_per_s=measured,
            bandwidth_source="measured" if measured else None,
        )
    disk = system.probe_disk(models_dir or system.default_models_dir(env), issues)
    os_info = system.probe_os(root)
    gpus, gpu_issues = probe_gpus(nvml, env)
    machine = system.probe_machine(root, issues)
    software = Software()
    if detect is not None:
        from canirun.hardware.software import installed_frameworks

        software = Software(tuple(sorted(installed_frameworks(detect))))
    hardware = Hardware(cpu=cpu, memory=memory, disk=disk, gpus=gpus, os=os_info, software=software)
    return Host(hardware=hardware, machine=machine, issues=(*issues, *gpu_issues))


def load_host(
    hardware_file: Path | None,
    models_dir: Path | None,
    *,
    measure_bandwidth: bool = False,
    detect: Sequence[DetectSpec] | None = None,
) -> Host:
    """This machine probed, or the machine a --hardware file describes.

    A file's installed frameworks are the file's (``hardware.software``): what is
    installed on the machine reading it says nothing about the one it describes.
    """
    if hardware_file is None:
        return probe(models_dir, measure_bandwidth=measure_bandwidth, detect=detect)
    if models_dir is not None:
        from canirun.errors import InputError

        raise InputError("--models-dir measures this machine's disk; it cannot go with --hardware")
    from canirun.hardware.file import load_hardware_file

    return load_hardware_file(hardware_file)


__all__ = ["Hardware", "Host", "ProbeIssue", "Software", "load_host", "probe"]
