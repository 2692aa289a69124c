"""A quick measurement of RAM bandwidth, for CPU decode-speed estimates.

Inference runtimes read weights with every core at once, so the test copies
with one thread per usable core (affinity and cgroup CPU quota applied, at most
64), each its own pair of buffers; ``ctypes.memmove`` releases the GIL, so the
copies really run in parallel. The best of a few rounds is kept. ~0.1 s.

It must never harm the machine it measures: the buffers take a small share
(1/8, at most 256 MiB) of the memory that is really free, the smaller of the
host's available RAM and the container's room (limit minus usage). When that
share is too small to outgrow the CPU caches, or the room cannot be read, the
test is skipped and says why.
"""

from __future__ import annotations

import threading
import time

from canirun.records import Record, record

MIB = 2**20
MAX_TOTAL = 256 * MIB  # all buffers together; bigger than any desktop CPU's caches
MIN_TOTAL = 64 * MIB  # below this the copy would partly run in the caches
SHARE = 8  # use at most 1/SHARE of the free memory
MAX_THREADS = 64
MIN_PER_THREAD = 2 * MIB  # each buffer of a pair
ROUNDS = 4
_WAIT = 10.0  # seconds; a thread that does not arrive ends the test, never hangs it


@record(slots=True)
class Measurement(Record):
    bytes_per_s: int | None
    threads: int = 0
    buffer_bytes: int = 0  # all buffers together
    note: str | None = None  # why it was not measured


def memory_budget(
    available: int | None, limit: int | None, used: int | None, *, limit_unknown: bool = False
) -> tuple[int | None, str | None]:
    """Bytes the test may allocate, or None and the reason it may not."""
    if available is None:
        return None, "the available RAM could not be read"
    if limit_unknown:
        return None, "the container's memory limit could not be read"
    room = available
    if limit is not None:
        if used is None:
            return None, "the container's memory use could not be read"
        room = min(room, max(0, limit - used))
    budget = min(MAX_TOTAL, room // SHARE)
    if budget < MIN_TOTAL:
        return None, (
            f"only {room // MIB} MiB of memory is free; the test needs "
            f"{MIN_TOTAL * SHARE // MIB} MiB free to use a safe share of it"
        )
    return budget, None


def _buffers(budget: int, cores: int) -> list[tuple[bytearray, bytearray]]:
    threads = max(1, min(cores, MAX_THREADS, budget // (2 * MIN_PER_THREAD)))
    size = budget // (2 * threads) // 4096 * 4096
    return [(bytearray(b"\x01") * size, bytearray(size)) for _ in range(threads)]


def _best_round(pairs: list[tuple[bytearray, bytearray]], rounds: int) -> float | None:
    """Seconds of the fastest round in which every thread copied its buffer once."""
    import ctypes

    start, end = threading.Barrier(len(pairs) + 1), threading.Barrier(len(pairs) + 1)

    def copy(src: bytearray, dst: bytearray) -> None:
        size = len(src)
        source = (ctypes.c_char * size).from_buffer(src)
        target = (ctypes.c_char * size).from_buffer(dst)
        ctypes.memmove(target, source, size)  # fault in the destination's pages
        try:
            for _ in range(rounds):
                start.wait(_WAIT)
                ctypes.memmove(target, source, size)
                end.wait(_WAIT)
        except threading.BrokenBarrierError:
            pass
        finally:
            del source, target  # release the buffer exports

    workers = [threading.Thread(target=copy, args=pair, daemon=True) for pair in pairs]
    for worker in workers:
        worker.start()
    best: float | None = None
    try:
        for _ in range(rounds):
            start.wait(_WAIT)
            began = time.perf_counter()
            end.wait(_WAIT)
            took = time.perf_counter() - began
            best = took if best is None else min(best, took)
    except threading.BrokenBarrierError:
        best = None
    finally:
        start.abort()
        end.abort()
        for worker in workers:
            worker.join(_WAIT)
    return best


def measure_ram_bandwidth(budget: int, cores: int, rounds: int = ROUNDS) -> Measurement:
    """Bytes per second moved (read + written) by ``cores`` threads copying at once."""
    try:
        pairs = _buffers(budget, cores)
    except MemoryError:
        return Measurement(None, note="the memory for the test could not be allocated")
    try:
        best = _best_round(pairs, rounds)
    except RuntimeError as exc:  # "can't start new thread": a pids limit
        return Measurement(None, note=f"threads could not be started: {exc}")
    moved = sum(len(src) for src, _ in pairs)
    if not best:
        return Measurement(None, len(pairs), 2 * moved, "the copy test did not finish")
    return Measurement(round(2 * moved / best), len(pairs), 2 * moved)
