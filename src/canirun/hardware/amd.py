"""AMD GPUs on Linux from amdgpu sysfs and the KFD topology: no ROCm needed.

What is read, per card (``/sys/class/drm/cardN/device``, kernel docs
driver-misc.rst): ``mem_info_vram_total/used`` (dedicated memory, or an APU's
BIOS carve-out), ``mem_info_gtt_total`` (system RAM the driver maps for the GPU,
clamped by TTM's ``pages_limit`` and by RAM), the PCI ids for the marketing name
in libdrm's ``amdgpu.ids``. The KFD node of the same PCI address gives the gfx
target (``gfx_target_version``), compute units and the memory pool HIP reports
(``mem_banks/*/properties``). The one seam is ``root``: tests pass a fixture tree.

The official ``amdsmi`` binding is not needed: everything it reports for sizing
is in these files already (accelerators.md §1.8). When it is installed it only
names cards amdgpu.ids does not know and gives the driver version
(``amdsmi_names``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from canirun.hardware import sysfs
from canirun.hardware.model import Gpu, ProbeIssue
from canirun.records import Record, record

AMD_VENDOR = 0x1002
_SOURCE = "amdgpu"
GIB = 2**30
_IDS = ("usr/share/libdrm/amdgpu.ids", "opt/amdgpu/share/libdrm/amdgpu.ids")
# HSA heap types of KFD memory banks: 1 = frame buffer public, 2 = private.
_FB_HEAPS = {1, 2}


@record(slots=True)
class KfdNode(Record):
    gfx: str | None
    compute_units: int | None
    pool_bytes: int | None  # sum of the frame-buffer banks: hipMemGetInfo's total
    location: str | None  # PCI address rebuilt from domain + location_id


def gfx_name(version: int) -> str | None:
    """KFD's gfx_target_version (major*10000 + minor*100 + stepping) as an LLVM target.

    Minor and stepping print in hex: 90010 -> gfx90a, 110501 -> gfx1151 (Ollama's
    gfxTargetFromKFDVersion does the same).
    """
    if version <= 0:
        return None
    major, minor, step = version // 10000, (version // 100) % 100, version % 100
    if minor > 0xF or step > 0xF:
        return None
    return f"gfx{major}{minor:x}{step:x}"


def override_gfx(env: Mapping[str, str], index: int) -> str | None:
    """The target HSA_OVERRIDE_GFX_VERSION(_n) makes ROCm use instead ("11.0.0" -> gfx1100)."""
    value = env.get(f"HSA_OVERRIDE_GFX_VERSION_{index}") or env.get("HSA_OVERRIDE_GFX_VERSION")
    if not value:
        return None
    try:
        major, minor, step = (int(p) for p in value.strip().split("."))
    except ValueError:
        return None
    return gfx_name(major * 10000 + minor * 100 + step)


def marketing_name(root: Path, device: int, revision: int | None) -> str | None:
    """The name in libdrm's amdgpu.ids (``744C,<tab>C8,<tab>AMD Radeon RX 7900 XTX``).

    Keyed by device id and revision; without a revision match, the id's first entry.
    """
    fallback = None
    for rel in _IDS:
        text = sysfs.read_text_large(root / rel)
        if text is None:
            continue
        for line in text.splitlines():
            parts = [p.strip() for p in line.split(",", 2)]
            if len(parts) != 3 or line.startswith("#"):
                continue
            try:
                did, rev = int(parts[0], 16), int(parts[1], 16)
            except ValueError:
                continue
            if did == device and rev == revision:
                return parts[2]
            if did == device and fallback is None:
                fallback = parts[2]
    return fallback


def _location(props: Mapping[str, str]) -> str | None:
    try:
        loc, domain = int(props["location_id"]), int(props.get("domain", "0"))
    except (KeyError, ValueError):
        return None
    return f"{domain:04x}:{loc >> 8:02x}:{(loc >> 3) & 0x1F:02x}.{loc & 7}"


def _int(props: Mapping[str, str], key: str) -> int | None:
    try:
        return int(props[key])
    except (KeyError, ValueError):
        return None


def read_kfd_nodes(root: Path, issues: list[ProbeIssue]) -> list[KfdNode]:
    nodes_dir = root / "sys/class/kfd/kfd/topology/nodes"
    try:
        names = sorted((p.name for p in nodes_dir.iterdir() if p.name.isdigit()), key=int)
    except OSError:
        return []
    nodes = []
    for name in names:
        try:
            text = (nodes_dir / name / "properties").read_text(errors="replace")
        except PermissionError:
            # Containers see every host node but may read only their own.
            issues.append(ProbeIssue(_SOURCE, f"KFD node {name} is not readable here", "info"))
            continue
        except OSError:
            continue
        props = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        version = _int(props, "gfx_target_version") or 0
        if version == 0:
            continue  # a CPU node
        simds, per_cu = _int(props, "simd_count"), _int(props, "simd_per_cu")
        nodes.append(
            KfdNode(
                gfx=gfx_name(version),
                compute_units=simds // per_cu if simds and per_cu else None,
                pool_bytes=_kfd_pool(nodes_dir / name / "mem_banks"),
                location=_location(props),
            )
        )
    return nodes


def _kfd_pool(banks: Path) -> int | None:
    try:
        dirs = sorted(banks.iterdir())
    except OSError:
        return None
    total = 0
    for bank in dirs:
        props = sysfs.read_keyed(bank / "properties") or {}
        if _int(props, "heap_type") in _FB_HEAPS:
            total += _int(props, "size_in_bytes") or 0
    return total or None


def ttm_limit(root: Path, page_size: int) -> int | None:
    """TTM's cap on system memory the GPU may pin (``pages_limit``; ``amdttm`` with AMD's DKMS)."""
    for module in ("ttm", "amdttm"):
        pages = sysfs.read_int(root / f"sys/module/{module}/parameters/pages_limit")
        if pages:
            return pages * page_size
    return None


def _integrated(device: Path, vram: int | None, gtt: int | None) -> bool:
    """Ollama's rule (discover/amd.go): board files mean discrete; else a small
    carve-out with a much larger GTT means an APU."""
    if (device / "mem_info_vram_vendor").exists() or (device / "board_info").exists():
        return False
    if vram is None or gtt is None:
        return False
    return vram <= 4 * GIB and gtt >= 8 * GIB and gtt >= 4 * vram


def rocm_version(root: Path, env: Mapping[str, str]) -> str | None:
    folders = [env["ROCM_PATH"].lstrip("/")] if env.get("ROCM_PATH") else []
    for folder in [*folders, "opt/rocm"]:
        text = sysfs.read_text(root / folder / ".info/version")
        if text:
            return text.split("-")[0]
    return None


def probe_amd(
    root: Path,
    *,
    ram_total: int | None,
    ram_available: int | None,
    env: Mapping[str, str] = os.environ,
    page_size: int | None = None,
    amdsmi: Any | None = None,
) -> tuple[tuple[Gpu, ...], tuple[ProbeIssue, ...]]:
    """Every amdgpu card under ``root``, and what could not be read about them."""
    issues: list[ProbeIssue] = []
    cards = [c for c in sysfs.drm_cards(root) if sysfs.read_int(c / "device/vendor") == AMD_VENDOR]
    if not cards:
        return (), ()
    page = page_size or _page_size()
    kfd = {n.location: n for n in read_kfd_nodes(root, issues)}
    has_kfd = (root / "dev/kfd").exists()
    version = rocm_version(root, env) if has_kfd else None
    ttm = ttm_limit(root, page)
    from canirun.hardware import amdsmi_names

    smi = amdsmi_names.names_by_address(amdsmi if amdsmi is not None else _default_amdsmi(root))
    gpus = []
    for index, card in enumerate(cards):
        gpu = _card(root, card, index, kfd, ttm, ram_total, ram_available, has_kfd, version)
        gpu = _with_amdsmi(gpu, smi)
        gpus.append(gpu)
        _notes(gpu, index, env, has_kfd, issues)
    return tuple(gpus), tuple(issues)


def _default_amdsmi(root: Path) -> Any | None:
    """The installed binding, only when probing this machine (not a fixture tree)."""
    if root != Path("/"):
        return None
    from canirun.hardware.amdsmi_names import load_amdsmi

    return load_amdsmi()


def _with_amdsmi(gpu: Gpu, smi: Mapping[str, tuple[str | None, str | None]]) -> Gpu:
    name, driver = smi.get((gpu.pci_address or "").lower(), (None, None))
    if name and gpu.name.startswith("AMD GPU 0x"):  # amdgpu.ids did not know it
        gpu = replace(gpu, name=name)
    if driver and gpu.driver_version is None:
        gpu = replace(gpu, driver_version=driver)
    return gpu


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 4096


def _card(
    root: Path,
    card: Path,
    index: int,
    kfd: Mapping[str | None, KfdNode],
    ttm: int | None,
    ram_total: int | None,
    ram_available: int | None,
    has_kfd: bool,
    rocm: str | None,
) -> Gpu:
    dev = card / "device"
    address = sysfs.pci_slot(dev)
    device_id = sysfs.read_int(dev / "device") or 0
    name = (
        marketing_name(root, device_id, sysfs.read_int(dev / "revision"))
        or sysfs.read_text(dev / "product_name")
        or f"AMD GPU {device_id:#06x}"
    )
    vram = sysfs.read_int(dev / "mem_info_vram_total")
    used = sysfs.read_int(dev / "mem_info_vram_used")
    gtt = sysfs.read_int(dev / "mem_info_gtt_total")
    # GTT can exceed what TTM lets the GPU pin, and (a stale TTM limit) even RAM.
    shared = min((v for v in (gtt, ttm, ram_total) if v), default=None) if gtt else None
    node = kfd.get(address) or (next(iter(kfd.values())) if len(kfd) == 1 else None)
    unified = _integrated(dev, vram, gtt)
    free = vram - used if vram is not None and used is not None else None
    total = vram
    source = "sysfs:mem_info_vram_total/used"
    if unified and vram is not None and shared:
        # An APU's GPU addresses its carve-out plus GTT; free GTT is bounded by
        # what RAM has available, the same bytes the CPU would use.
        total = vram + shared
        free = (free or 0) + min(shared, ram_available or shared)
        source = "sysfs:mem_info_vram_total + GTT (clamped by TTM pages_limit and RAM)"
    runtimes = ("rocm", "vulkan") if has_kfd and node is not None else ("vulkan",)
    return Gpu(
        vendor="amd",
        name=name,
        memory_total_bytes=total,
        memory_free_bytes=free,
        memory_used_bytes=used,
        index=index,
        pci_address=address,
        memory_source=source,
        shared_memory_bytes=shared,
        shared_memory_source="sysfs:mem_info_gtt_total, ttm pages_limit" if shared else None,
        usable_memory_bytes=node.pool_bytes if node else None,
        usable_memory_source="kfd:mem_banks (the pool HIP reports)"
        if node and node.pool_bytes
        else None,
        arch=node.gfx if node else None,
        gpu_cores=node.compute_units if node else None,
        kernel_driver=sysfs.kernel_driver(dev),
        runtime_version=f"ROCm {rocm}" if rocm else None,
        unified_memory=unified,
        runtimes=runtimes,
    )


def _notes(
    gpu: Gpu, index: int, env: Mapping[str, str], has_kfd: bool, issues: list[ProbeIssue]
) -> None:
    label = f"AMD GPU {index} ({gpu.name})"
    if gpu.memory_total_bytes is None:
        issues.append(ProbeIssue(_SOURCE, f"{label}: mem_info_vram_total is not readable"))
    if not has_kfd:
        issues.append(
            ProbeIssue(
                _SOURCE,
                f"{label}: no /dev/kfd, so ROCm cannot use it here (Vulkan may); "
                "in a container pass --device /dev/kfd",
                "info",
            )
        )
    elif gpu.arch is None:
        issues.append(
            ProbeIssue(_SOURCE, f"{label}: no KFD node found: gfx target unknown", "info")
        )
    forced = override_gfx(env, index)
    if forced and forced != gpu.arch:
        issues.append(
            ProbeIssue(
                _SOURCE,
                f"{label}: HSA_OVERRIDE_GFX_VERSION makes ROCm treat "
                f"{gpu.arch or 'it'} as {forced}",
                "info",
            )
        )
