"""A quick measurement of RAM bandwidth, for CPU decode-speed estimates.

Copies a buffer several times larger than any CPU cache and keeps the best of
a few rounds. It is one thread's memcpy (read + write), so it is a floor: a
multi-threaded runtime reads faster on a many-channel server. ~0.1 s.
"""

from __future__ import annotations

import time

_BUFFER = 128 * 2**20  # bigger than the last-level cache of any desktop CPU
_ROUNDS = 4


def measure_copy_bandwidth(size: int = _BUFFER, rounds: int = _ROUNDS) -> int | None:
    """Bytes per second moved (read + written) by a memcpy of ``size`` bytes."""
    try:
        src = bytearray(b"\x01") * size
        dst = bytearray(size)
    except MemoryError:
        return None
    dst[:] = src  # fault in the destination's pages before timing
    best = None
    for _ in range(rounds):
        start = time.perf_counter()
        dst[:] = src
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    if not best:
        return None
    return round(2 * size / best)
