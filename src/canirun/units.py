"""Byte quantities: parsing what people and sources write, and printing them.

Everything inside canirun is an integer number of bytes. Decimal (GB = 10^9)
and binary (GiB = 2^30) units are kept apart: a string says which it is, and
printing always names the unit it used.
"""

from __future__ import annotations

import functools
import math
import re

_DECIMAL = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15}
_BINARY = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}
_UNITS = _DECIMAL | _BINARY
# Shorthand people type: "24G", "512M" follow the decimal reading, like `df -H`.
_UNITS |= {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")

GIB = 2**30
GB = 10**9


@functools.lru_cache(maxsize=4096)
def parse_size(text: str) -> int:
    """Parse "24GB", "1.5 TiB", "512 MiB", "4.92 GB", "1024" (bytes) into bytes.

    Memoised: catalog figures are kept as the strings their sources print, and the
    estimator reads the same few (backend contexts, reserves) tens of thousands of times
    per scan.

    Raises ValueError with a readable reason for anything else: negative or
    non-finite numbers, unknown units, empty strings.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 24GB, 16GiB, 512MiB)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(
            f"{text!r}: unknown unit {unit!r} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    value = float(number) * factor
    if not math.isfinite(value) or value > 2**63:
        raise ValueError(f"{text!r} is too large")
    return round(value)


def parse_rate(text: str) -> int:
    """Parse a bandwidth such as "1008 GB/s" or "3.35 TB/s" into bytes per second."""
    body = text.strip()
    if not body.lower().endswith("/s"):
        raise ValueError(f"{text!r} is not a rate (example: 1008 GB/s)")
    return parse_size(body[:-2])


def format_gib(n_bytes: int | None, digits: int = 1) -> str:
    """Render bytes as GiB ("7.8 GiB"); None renders as "?" (never as zero)."""
    if n_bytes is None:
        return "?"
    if digits == 1:  # the usual case, with a literal format (a scan writes ~5,000)
        return f"{n_bytes / GIB:.1f} GiB"
    return f"{n_bytes / GIB:.{digits}f} GiB"


def format_bytes(n_bytes: int | None) -> str:
    """Human-readable binary size with a unit that keeps 1-3 integer digits."""
    if n_bytes is None:
        return "?"
    value = float(n_bytes)
    size = abs(value)
    # Thresholds instead of dividing step by step: dividing by a power of two is exact in
    # binary floating point, so each figure is the one the steps would give.
    if size < 1024:
        return f"{value:.0f} B"
    if size < 1024**2:
        return f"{value / 1024:.1f} KiB"
    if size < 1024**3:
        return f"{value / 1024**2:.1f} MiB"
    if size < 1024**4:
        return f"{value / 1024**3:.1f} GiB"
    return f"{value / 1024**4:.1f} TiB"
