"""NVIDIA Jetson: the SoC's GPU shares system RAM; NVML gives no memory there.

A Jetson is recognised by its device-tree model (``/proc/device-tree/model``,
e.g. "NVIDIA Jetson AGX Orin Developer Kit") and its L4T release
(``/etc/nv_tegra_release``). Its GPU memory is the system's RAM, as llama.cpp's
CUDA backend also assumes for integrated devices (MemAvailable as free). The
compute capability comes from the catalog's GPU table (Orin 8.7), not from here.
Used only when NVML found no GPU. The one seam is ``root``.
"""

from __future__ import annotations

import re
from pathlib import Path

from canirun.hardware import sysfs
from canirun.hardware.model import Gpu, Memory, ProbeIssue


def device_tree_model(root: Path) -> str | None:
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = sysfs.read_text(root / rel)
        if text:
            return text
    return None


def l4t_release(root: Path) -> str | None:
    """ "# R36 (release), REVISION: 4.3, ..." -> "L4T R36.4.3"."""
    text = sysfs.read_text(root / "etc/nv_tegra_release") or ""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"L4T R{match.group(1)}.{match.group(2)}" if match else None


def probe_jetson(root: Path, memory: Memory) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]:
    model = device_tree_model(root)
    if not model or "jetson" not in model.lower():
        return (), ()
    name = model.removesuffix(" Developer Kit").strip()
    gpu = Gpu(
        vendor="nvidia",
        name=name,
        memory_total_bytes=memory.total_bytes,
        memory_free_bytes=memory.available_bytes,  # MemAvailable, as llama.cpp takes it
        index=0,
        memory_source="system RAM (Jetson: the GPU shares it; device-tree model)",
        usable_memory_bytes=memory.total_bytes,
        usable_memory_source="system RAM",
        arch="tegra",
        runtime_version=l4t_release(root),
        unified_memory=True,
        runtimes=("cuda", "vulkan"),
    )
    note = ProbeIssue("jetson", f"{model}: GPU memory is system RAM (no NVML memory)", "info")
    return (gpu,), (note,)
