"""Small, failure-tolerant readers for sysfs/procfs files under a root folder.

Every GPU backend that reads the kernel's view of a device goes through these,
so tests point ``root`` at a fixture tree recorded from a real machine. A file
that is missing, unreadable or malformed reads as ``None``; the caller decides
whether that is worth a probe issue.
"""

from __future__ import annotations

import re
from pathlib import Path

# Reading more than this from one sysfs attribute means it is not one.
_MAX_ATTRIBUTE = 64 * 1024
_CARD = re.compile(r"^card\d+$")


def read_text(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_ATTRIBUTE)
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace").strip().strip("\0").strip()


def read_int(path: Path) -> int | None:
    """A decimal or 0x-hex integer attribute ("0x744c", "25769803776")."""
    text = read_text(path)
    if not text:
        return None
    try:
        return int(text.split()[0], 0)
    except ValueError:
        return None


def read_keyed(path: Path, sep: str | None = None) -> dict[str, str] | None:
    """``key value`` (KFD properties) or ``KEY=value`` (uevent) lines as a dict."""
    text = read_text(path)
    if text is None:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(sep) if sep else line.partition(" ")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


def drm_cards(root: Path) -> list[Path]:
    """``/sys/class/drm/cardN`` folders (not connectors like card0-DP-1), in N order."""
    drm = root / "sys/class/drm"
    try:
        names = [p.name for p in drm.iterdir() if _CARD.match(p.name)]
    except OSError:
        return []
    return [drm / n for n in sorted(names, key=lambda n: int(n[4:]))]


def pci_slot(device: Path) -> str | None:
    """The PCI address from the device's uevent (PCI_SLOT_NAME=0000:03:00.0)."""
    fields = read_keyed(device / "uevent", "=") or {}
    return fields.get("PCI_SLOT_NAME") or None


def kernel_driver(device: Path) -> str | None:
    fields = read_keyed(device / "uevent", "=") or {}
    if fields.get("DRIVER"):
        return fields["DRIVER"]
    try:
        return (device / "driver").resolve(strict=True).name
    except OSError:
        return None


def pci_ids_name(root: Path, vendor: int, device: int) -> str | None:
    """The device's name in the pci.ids database (hwdata), if installed."""
    for rel in ("usr/share/hwdata/pci.ids", "usr/share/misc/pci.ids"):
        text = read_text_large(root / rel)
        if text is None:
            continue
        return _pci_ids_lookup(text, vendor, device)
    return None


def read_text_large(path: Path, limit: int = 8 * 2**20) -> str | None:
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None


def _pci_ids_lookup(text: str, vendor: int, device: int) -> str | None:
    in_vendor = False
    want_vendor, want_device = f"{vendor:04x}", f"{device:04x}"
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            in_vendor = line[:4].lower() == want_vendor
            continue
        if in_vendor and not line.startswith("\t\t") and line[1:5].lower() == want_device:
            return line[5:].strip()
    return None
