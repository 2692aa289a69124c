"""The human-readable hardware summary (``canirun hardware``, top of ``canirun scan``).

Plain text, no colour: it reads the same in a terminal, a CI log or a pipe.
Memory is shown in GiB; bandwidth in GB/s (10^9 bytes), as vendors publish it.
"""

from __future__ import annotations

from canirun.hardware.model import Gpu, Hardware, Host
from canirun.output import safe
from canirun.units import format_gib

_LABEL = 9


def _line(label: str, text: str) -> str:
    return f"{label:<{_LABEL}}{text}"


def _cont(text: str) -> str:
    return " " * _LABEL + text


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


def _machine(host: Host) -> str:
    o = host.hardware.os
    parts = [host.machine.hostname or "unknown host"]
    parts += [p for p in (f"{o.system or '?'} {o.release or ''}".strip(), o.distribution) if p]
    parts.append(o.machine or "?")
    if o.container:
        parts.append(f"in a {o.container_kind or ''} container".replace("a  ", "a "))
    return _line("Machine", " · ".join(parts))


def _cpu(hw: Hardware) -> list[str]:
    c = hw.cpu
    name = c.model or "unknown CPU"
    if c.vendor and c.vendor.lower() not in name.lower():
        name += f" ({c.vendor})"
    cores = f"{_num(c.physical_cores)} physical / {_num(c.logical_cores)} logical cores"
    usable = f"{_num(c.usable_cores)} usable"
    if c.quota_cores is not None:
        usable += f" (cgroup quota {_num(c.quota_cores)})"
    lines = [_line("CPU", f"{name} · {cores}, {usable}")]
    if c.performance_cores is not None or c.efficiency_cores is not None:
        levels = f"{_num(c.performance_cores)} performance + {_num(c.efficiency_cores)} efficiency"
        lines.append(_cont(f"core types: {levels}"))
    if c.flags is None:
        lines.append(_cont("ISA flags: not read"))
    else:
        lines.append(_cont("ISA flags: " + (" ".join(c.flags) or "none of the tracked ones")))
    return lines


def _memory(hw: Hardware) -> list[str]:
    m = hw.memory
    text = f"{format_gib(m.total_bytes)} total, {format_gib(m.available_bytes)} available"
    if m.limit_unreadable:
        text += " · container limit unreadable"
    elif m.limit_bytes is not None:
        used = format_gib(m.limit_used_bytes)
        text += f" · container limit {format_gib(m.limit_bytes)} ({used} in use)"
    elif m.cgroup_version:
        text += " · no container limit"
    lines = [_line("Memory", text)]
    lines.append(_cont(f"usable for a model: {format_gib(m.usable_bytes)}"))
    if m.swap_total_bytes == 0:
        lines.append(_cont("swap: none"))
    elif m.swap_total_bytes is not None:
        free = format_gib(m.swap_free_bytes)
        lines.append(_cont(f"swap: {format_gib(m.swap_total_bytes)} ({free} free)"))
    return lines


def _disk(hw: Hardware) -> str:
    d = hw.disk
    if d.path is None:
        return _line("Disk", "not measured")
    where = d.path
    if d.exists is False:
        where += f" (not created yet; measured at {d.measured_path})"
    return _line("Disk", f"{where}: {format_gib(d.free_bytes)} free of {format_gib(d.total_bytes)}")


def _gpu(g: Gpu) -> list[str]:
    label = f"GPU {g.index}" if g.index is not None else "GPU"
    mem = format_gib(g.memory_total_bytes)
    if g.memory_free_bytes is not None:
        mem += f" ({format_gib(g.memory_free_bytes)} free)"
    parts = [g.name, mem]
    if g.unified_memory:
        parts.append("unified memory")
    if g.compute_capability:
        parts.append(f"compute {g.compute_capability}")
    if g.arch:
        parts.append(g.arch)
    if g.gpu_cores:
        parts.append(f"{g.gpu_cores} {'CUs' if g.vendor == 'amd' else 'GPU cores'}")
    if g.memory_bandwidth_bytes_per_s:
        published = (g.memory_bandwidth_source or "").startswith("catalog")
        rate = f"{g.memory_bandwidth_bytes_per_s / 1e9:.0f} GB/s"
        parts.append(rate + (" (published)" if published else ""))
    if g.pcie_generation and g.pcie_width:
        parts.append(f"PCIe {g.pcie_generation} x{g.pcie_width}")
    lines = [_line(label, " · ".join(parts))]
    lines += _gpu_memory_sources(g)
    if g.driver_version or g.cuda_version:
        lines.append(_cont(f"driver {g.driver_version or '?'}, CUDA {g.cuda_version or '?'}"))
    elif g.kernel_driver or g.runtime_version:
        lines.append(_cont(", ".join(v for v in (g.kernel_driver, g.runtime_version) if v)))
    if g.runtimes:
        lines.append(_cont(f"runtimes: {', '.join(g.runtimes)}"))
    if g.mig_enabled:
        sizes = ", ".join(format_gib(m.memory_total_bytes) for m in g.mig_devices) or "none"
        lines.append(_cont(f"MIG enabled: instances {sizes}"))
    return lines


def _gpu_memory_sources(g: Gpu) -> list[str]:
    """Where each memory figure came from, so a wrong one can be reported."""
    lines = []
    if g.memory_source and g.memory_source != "nvml":
        lines.append(_cont(f"memory from {g.memory_source}"))
    if g.shared_memory_bytes:
        shared = format_gib(g.shared_memory_bytes)
        lines.append(_cont(f"shared system memory: {shared} ({g.shared_memory_source or '?'})"))
    if g.usable_memory_bytes:
        usable = format_gib(g.usable_memory_bytes)
        lines.append(_cont(f"GPU budget: {usable} ({g.usable_memory_source or '?'})"))
    return lines


def _docker(hw: Hardware) -> str:
    d = hw.os.docker
    if d.cli is False:
        return _line("Docker", "not installed")
    state = {True: "usable", False: "client found, daemon not reachable", None: "unknown"}
    detail = f" ({d.detail})" if d.detail and d.usable is not True else ""
    return _line("Docker", state[d.usable] + detail)


def render_hardware(host: Host) -> str:
    hw = host.hardware
    lines = [_machine(host), *_cpu(hw), *_memory(hw), _disk(hw)]
    if hw.gpus:
        for gpu in hw.gpus:
            lines += _gpu(gpu)
    else:
        lines.append(_line("GPUs", "none found"))
    lines.append(_docker(hw))
    found = hw.software.frameworks
    if found is not None:
        # "Software": the label column holds 8 letters and a space.
        lines.append(
            _line(
                "Software",
                f"installed: {', '.join(found)}" if found else "none of the catalog's frameworks",
            )
        )
    if hw.assumed:
        # From --gpu/--vram/--ram: each entry names its flag. The rest are figures a
        # hardware file left out, filled from its totals.
        flags = [a for a in hw.assumed if "(from --" in a]
        filled = [a for a in hw.assumed if "(from --" not in a]
        parts = flags + (
            [", ".join(filled) + " (not stated in the file: the totals)"] if filled else []
        )
        lines.append(_line("Assumed", ", ".join(parts)))
    if host.issues:
        lines.append("")
        lines.append("Probe notes:")
        lines += [f"  {i.severity:<8} {i.source}: {i.message}" for i in host.issues]
    # Names and messages come from the probe and from files: never let them drive the terminal.
    return "\n".join(safe.line(line) for line in lines) + "\n"
