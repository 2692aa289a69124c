"""The hardware probe: one call, ``probe()``, returns a frozen ``Host``.

Backends, one module per source, each with one seam for its fake:
``system`` (psutil, /proc, cgroups; ``root``), ``nvidia`` (NVML; ``nvml``),
``amd`` and ``intel`` (amdgpu / i915 / xe sysfs and the KFD topology; ``root``),
``jetson`` (device tree; ``root``) and ``apple`` (sysctl, system_profiler,
Metal; ``run``). Which ones run depends on the OS. None of them raises past
this facade: whatever they cannot read becomes a ``ProbeIssue`` and a ``None``
figure, and a backend that crashes outright is one issue, not a traceback.
Nothing is probed at import time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canirun.hardware.model import Cpu, Gpu, Hardware, Host, Memory, ProbeIssue, Software

if TYPE_CHECKING:
    from canirun.hardware.software import DetectSpec

GpuProbe = tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]


def _isolated(source: str, backend: Any) -> GpuProbe:
    """Run one GPU backend; a bug in it costs that backend, never the probe."""
    try:
        result: GpuProbe = backend()
    except Exception as exc:  # the failure isolation NVML's chokepoint gives, for all
        return (), (ProbeIssue(source, f"probe failed: {type(exc).__name__}: {exc}"),)
    return result


def probe_gpus(
    system: str,
    root: Path,
    memory: Memory,
    nvml: Any | None,
    env: Mapping[str, str],
    run: Any | None = None,
) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...], Any]:
    """Every GPU backend that belongs on this OS, renumbered so indices stay unique.

    Returns the GPUs, the issues and (on macOS) the Apple probe's CPU facts.
    """
    # Each OS imports only its own backends: start-up time matters (benchmarks/startup.py).
    found: list[GpuProbe] = []
    apple_probe = None
    if system == "darwin":
        from canirun.hardware import apple

        apple_probe = apple.probe_apple(run or apple.run_command, memory.available_bytes)
        found.append(((apple_probe.gpu,) if apple_probe.gpu else (), apple_probe.issues))
    else:
        from canirun.hardware import nvidia

        found.append(_isolated("nvml", lambda: nvidia.probe_gpus(nvml, env, memory)))
    if system == "windows":
        from canirun.hardware import windows

        registry = run or windows.winreg_reader
        found.append(_isolated("windows-registry", lambda: windows.probe_windows_gpus(*registry())))
    if system == "linux":
        from canirun.hardware import amd, intel, jetson

        ram = {"ram_total": memory.total_bytes, "ram_available": memory.available_bytes}
        found.append(_isolated("amdgpu", lambda: amd.probe_amd(root, env=env, **ram)))
        found.append(_isolated("intel-gpu", lambda: intel.probe_intel(root, **ram)))
        if not found[0][0]:  # a Jetson whose NVML (if any) found nothing
            found.append(_isolated("jetson", lambda: jetson.probe_jetson(root, memory)))
    nv = [g for g in found[0][0] if g.vendor == "nvidia" and g.index is not None]
    start = max((g.index or 0 for g in nv), default=-1) + 1
    others = [g for part, _ in found for g in part if g not in nv]
    # NVML indices stay as CUDA numbers them; the other vendors' GPUs follow.
    gpus = [*nv, *(dataclasses.replace(g, index=start + i) for i, g in enumerate(others))]
    return tuple(gpus), tuple(i for _, issues in found for i in issues), apple_probe


def _host_os() -> str:
    import sys

    platform: str = sys.platform
    if platform.startswith("linux"):
        return "linux"
    return {"darwin": "darwin", "win32": "windows"}.get(platform, platform)


def probe(
    models_dir: Path | None = None,
    *,
    root: Path = Path("/"),
    nvml: Any | None = None,
    env: Mapping[str, str] = os.environ,
    measure_bandwidth: bool = False,
    run: Any | None = None,
    system_name: str | None = None,
    detect: Sequence[DetectSpec] | None = None,
    bandwidth_cache: Path | None = None,
    refresh_bandwidth: bool = False,
) -> Host:
    """Probe this machine. ``root``, ``nvml``, ``env``, ``run`` (the macOS backend's
    command runner; on Windows a function returning the registry readers) and
    ``system_name`` ("linux", "darwin", "windows") are seams for tests.

    ``measure_bandwidth`` adds a ~0.1 s RAM copy test for CPU speed estimates, whose
    figure is kept in ``bandwidth_cache`` (a file; None keeps nothing) and reused there
    for this machine unless ``refresh_bandwidth``;
    ``detect`` (from the catalog) says how to spot installed serving frameworks.
    """
    from canirun.hardware import system
    from canirun.hardware.cgroup import read_cgroup_limits

    issues: list[ProbeIssue] = []
    limits = read_cgroup_limits(root)
    issues += [ProbeIssue("cgroup", p) for p in limits.problems]
    cpu = system.probe_cpu(root, limits, issues)
    memory = system.probe_memory(limits, issues)
    if measure_bandwidth:
        kept = (bandwidth_cache, refresh_bandwidth, cpu)
        memory = _measure_bandwidth(memory, limits, issues, kept)
    disk = system.probe_disk(models_dir or system.default_models_dir(env), issues)
    os_info = system.probe_os(root)
    gpus, gpu_issues, apple_probe = probe_gpus(
        system_name or _host_os(), root, memory, nvml, env, run
    )
    if apple_probe is not None:
        cpu = _with_core_levels(cpu, apple_probe)
    machine = system.probe_machine(root, issues)
    software = Software()
    if detect is not None:
        from canirun.hardware.software import installed_frameworks

        software = Software(tuple(sorted(installed_frameworks(detect))))
    hardware = Hardware(cpu=cpu, memory=memory, disk=disk, gpus=gpus, os=os_info, software=software)
    return Host(hardware=hardware, machine=machine, issues=(*issues, *gpu_issues))


def _measure_bandwidth(
    memory: Any, limits: Any, issues: list[ProbeIssue], kept: tuple[Path | None, bool, Cpu]
) -> Any:
    """The RAM copy test, sized to what is free here, or a note saying why it was skipped;
    the figure kept from this machine's last test when there is one (kept: the cache file,
    whether to measure anew, the CPU probed)."""
    from canirun.hardware import bandwidth, bandwidth_cache
    from canirun.hardware.cpu import usable_core_count

    cache, refresh, cpu = kept
    cores = usable_core_count(limits.cpu_quota)
    key = bandwidth_cache.machine_key(_host_name(), cpu.model, cores, memory.total_bytes or 0)
    now = bandwidth_cache.now_utc()
    if cache is not None and not refresh:
        found = bandwidth_cache.lookup(key, now, cache)
        if found is not None:
            return dataclasses.replace(
                memory,
                bandwidth_bytes_per_s=found.bytes_per_s,
                bandwidth_source=f"measured {found.measured_at[:10]}, kept",
            )
    budget, why = bandwidth.memory_budget(
        memory.available_bytes,
        limits.memory_limit,
        limits.memory_used,
        limit_unknown=any("memory" in p for p in limits.problems),
    )
    if budget is None:
        issues.append(ProbeIssue("bandwidth", f"RAM bandwidth not measured: {why}", "info"))
        return memory
    result = bandwidth.measure_ram_bandwidth(budget, cores)
    if result.bytes_per_s is None:
        issues.append(ProbeIssue("bandwidth", f"RAM bandwidth not measured: {result.note}", "info"))
        return memory
    if cache is not None:
        problem = bandwidth_cache.keep(key, result.bytes_per_s, now, cache)
        if problem is not None:
            issues.append(ProbeIssue("bandwidth", f"RAM bandwidth not kept: {problem}", "info"))
    return dataclasses.replace(
        memory, bandwidth_bytes_per_s=result.bytes_per_s, bandwidth_source="measured"
    )


def _host_name() -> str:
    import socket

    return socket.gethostname()


def _with_core_levels(cpu: Cpu, apple_probe: Any) -> Cpu:
    return dataclasses.replace(
        cpu,
        performance_cores=apple_probe.performance_cores,
        efficiency_cores=apple_probe.efficiency_cores,
    )


def load_host(
    hardware_file: Path | None,
    models_dir: Path | None,
    *,
    measure_bandwidth: bool = False,
    detect: Sequence[DetectSpec] | None = None,
    bandwidth_cache: Path | None = None,
    refresh_bandwidth: bool = False,
) -> Host:
    """This machine probed, or the machine a --hardware file describes.

    A file's installed frameworks are the file's (``hardware.software``): what is
    installed on the machine reading it says nothing about the one it describes.
    """
    if hardware_file is None:
        return probe(
            models_dir,
            measure_bandwidth=measure_bandwidth,
            detect=detect,
            bandwidth_cache=bandwidth_cache,
            refresh_bandwidth=refresh_bandwidth,
        )
    if models_dir is not None:
        from canirun.errors import InputError

        raise InputError("--models-dir measures this machine's disk; it cannot go with --hardware")
    from canirun.hardware.file import load_hardware_file

    return load_hardware_file(hardware_file)


__all__ = ["Hardware", "Host", "ProbeIssue", "Software", "load_host", "probe"]
