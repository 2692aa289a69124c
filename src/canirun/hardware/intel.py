"""Intel GPUs on Linux from the i915/xe sysfs: Arc local memory, iGPU shared memory.

- xe publishes each tile's physical VRAM in ``device/tileN/physical_vram_size_bytes``
  (mainline ``xe_tile_sysfs.c``; some kernels put it under ``tileN/memory/``).
- i915 has no mainline total; Intel's backport driver writes ``lmem_total_bytes``
  on the DRM minor folder (``/sys/class/drm/cardN``).
- An iGPU (PCI 0000:00:02.0, or no local memory) uses system RAM: Intel's
  compute-runtime reports 80 % of it as global memory on Linux (``0.8`` in
  getPercentOfGlobalMemoryAvailable; an Iris Xe with 64 GB RAM showed 53705M in
  llama.cpp #6382), so that is the shared limit, labelled an estimate.

The one seam is ``root``.
"""

from __future__ import annotations

import re
from pathlib import Path

from canirun.hardware import sysfs
from canirun.hardware.model import Gpu, ProbeIssue

INTEL_VENDOR = 0x8086
_SOURCE = "intel-gpu"
_IGPU_SLOT = "0000:00:02.0"
COMPUTE_RUNTIME_SHARE = 0.8
# Generation by the code name pci.ids gives the chip.
_GENERATIONS = (
    ("DG2", "Xe-HPG (Alchemist)"),
    ("Battlemage", "Xe2-HPG (Battlemage)"),
    ("Lunar Lake", "Xe2-LPG"),
    ("Meteor Lake", "Xe-LPG"),
    ("Arrow Lake", "Xe-LPG"),
    ("Raptor Lake", "Xe-LP"),
    ("Alder Lake", "Xe-LP"),
    ("Tiger Lake", "Xe-LP"),
)


def _local_memory(card: Path) -> tuple[int | None, str | None]:
    tiles = []
    try:
        tile_dirs = sorted(p for p in (card / "device").iterdir() if p.name.startswith("tile"))
    except OSError:
        tile_dirs = []
    for tile in tile_dirs:
        for rel in ("physical_vram_size_bytes", "memory/physical_vram_size_bytes"):
            value = sysfs.read_int(tile / rel)
            if value:
                tiles.append(value)
                break
    if tiles:
        return sum(tiles), "sysfs:xe tileN/physical_vram_size_bytes"
    value = sysfs.read_int(card / "lmem_total_bytes")
    if value:
        return value, "sysfs:i915 lmem_total_bytes"
    return None, None


def _name(root: Path, device: int) -> tuple[str, str | None]:
    chip = sysfs.pci_ids_name(root, INTEL_VENDOR, device)
    if chip is None:
        return f"Intel GPU {device:#06x}", None
    marketing = re.search(r"\[(.+)\]", chip)
    generation = next((g for key, g in _GENERATIONS if key in chip), None)
    name = marketing.group(1) if marketing else chip
    return (name if name.startswith("Intel") else f"Intel {name}"), generation


def probe_intel(
    root: Path, *, ram_total: int | None, ram_available: int | None
) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]:
    gpus, issues = [], []
    cards = [
        c for c in sysfs.drm_cards(root) if sysfs.read_int(c / "device/vendor") == INTEL_VENDOR
    ]
    for index, card in enumerate(cards):
        dev = card / "device"
        driver = sysfs.kernel_driver(dev)
        if driver not in ("i915", "xe"):
            continue
        address = sysfs.pci_slot(dev)
        name, generation = _name(root, sysfs.read_int(dev / "device") or 0)
        local, source = _local_memory(card)
        integrated = local is None or address == _IGPU_SLOT
        shared = round(ram_total * COMPUTE_RUNTIME_SHARE) if integrated and ram_total else None
        if integrated:
            total, free, source = (
                shared,
                (min(shared, ram_available) if shared and ram_available else None),
                "system RAM (iGPU)",
            )
        else:
            total, free = local, None
            issues.append(
                ProbeIssue(
                    _SOURCE, f"Intel GPU {index} ({name}): free memory is not in sysfs", "info"
                )
            )
        gpus.append(
            Gpu(
                vendor="intel",
                name=name,
                memory_total_bytes=total,
                memory_free_bytes=free,
                index=index,
                pci_address=address,
                memory_source=source,
                shared_memory_bytes=shared,
                shared_memory_source=(
                    "estimate: compute-runtime reports 80% of RAM on Linux" if shared else None
                ),
                usable_memory_bytes=shared if integrated else None,
                usable_memory_source="estimate: compute-runtime 80% of RAM" if integrated else None,
                arch=generation,
                kernel_driver=driver,
                unified_memory=integrated,
                runtimes=("sycl", "vulkan", "openvino", "xpu"),
            )
        )
    return tuple(gpus), tuple(issues)
