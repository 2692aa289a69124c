"""Rating spread over this machine's cores: the catalog's variants shared out to forked
workers, the answers sent back whole and put back in order (issue 15).

A scan rates every variant of the catalog, each on its own: a pure function of the
variant, the catalog, the machine and the options. On Linux a forked child starts with
all of that already loaded, so ``map_in_order`` cuts the items into chunks, puts their
numbers in a pipe, and lets this process and its workers each take the next chunk until
none is left (a worker slowed by copying the pages it writes to simply takes fewer). Each
worker streams its answers back through a pipe of its own, pickled (canirun's own
records and plain values, read by an unpickler that can build nothing else). The answers
are the ones this process would have worked out, put back in the items' order, so a
report is the same byte for byte (``tests/test_fanout.py``); only the wall time changes.

Forking is done only where it is safe and pays:

- on Linux (macOS's system libraries do not survive a fork without exec; Windows has
  none), in a process with a single thread (a fork copies only the calling thread, and
  a lock another thread held would stay locked in the child);
- with two or more CPUs this process may use (its affinity, and its cgroup's quota);
- when there are enough items to outweigh a fork and the transfer (``MIN_ITEMS``);
- unless ``CANIRUN_WORKERS`` says otherwise (``1``: never fork).

A worker that fails in any way (an exception, a signal, an answer that cannot be read)
only costs time: its share is worked out again here, so an error is raised here as it
would have been without workers. The command line asks for workers
(``usable_workers``); the Python API rates in its caller's process unless asked.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

ENV = "CANIRUN_WORKERS"
# At most this many processes. A scan is 0.1-0.2 s of rating, and each worker costs a fork,
# the pages it copies and the reading of its answers (~10 ms on the 2-core VM): four is a
# cap on what a short command takes from a big machine, not a measured optimum.
MAX_WORKERS = 4
# Fewer items than this are rated here: a worker's fork, pickling and reading cost about
# what 20 variants take to rate (a `check` usually names a handful).
MIN_ITEMS = 48


def usable_workers(environ: dict[str, str] | None = None) -> int:
    """How many processes a rating may use here: 1 where forking is not safe or not
    worth it, else the CPUs this process may run on, at most ``MAX_WORKERS`` (or
    ``CANIRUN_WORKERS``, a positive whole number; an unreadable value means 1)."""
    env = os.environ if environ is None else environ
    wanted = env.get(ENV, "").strip()
    limit = MAX_WORKERS
    if wanted:
        if not (wanted.isascii() and wanted.isdigit() and int(wanted) >= 1):
            return 1
        limit = int(wanted)
    if limit < 2 or not _can_fork():
        return 1
    return max(1, min(limit, _cpus()))


def _can_fork() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork") and _threads() == 1


def _threads() -> int:
    """This process's threads, C ones too (``threading`` sees only Python's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0  # unknown: not 1, so no fork


def _cpus() -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return 1
    if cpus < 2:
        return cpus
    from canirun.hardware.cgroup import read_cgroup_limits

    quota = read_cgroup_limits().cpu_quota
    return cpus if quota is None else max(1, min(cpus, int(quota)))


def map_in_order(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    records: Sequence[type] = (),
) -> list[R]:
    """``[fn(x) for x in items]``, with the work shared by ``workers`` processes when
    there are enough items (each process takes at least 24). ``records``: the record
    classes the answers may hold, sent by their fields (``Record._init_values``; reading
    them back is then about twice as fast as pickle's generic state) and the only classes
    a worker's answer may hold: one that holds another is worked out again here."""
    n = min(workers, len(items) // (MIN_ITEMS // 2)) if len(items) >= MIN_ITEMS else 1
    if n < 2 or not _can_fork():
        return [fn(x) for x in items]
    chunks = _chunks(len(items), n)
    queue = _queue(len(chunks))
    children: list[tuple[int, int]] = []
    try:
        children = [_fork_worker(fn, items, chunks, queue, records) for _ in range(n - 1)]
        done = dict(_work(fn, items, chunks, queue))
        for child in children:
            done.update(_collect(child, records))
        children = []
    finally:
        os.close(queue)
        for child in children:  # an error here: the workers are stopped and reaped
            _stop(child)
    out: list[Any] = []
    for k, (start, stop) in enumerate(chunks):
        # A chunk a worker took and did not send back (it failed) is worked out here.
        out += done[k] if k in done else [fn(x) for x in items[start:stop]]
    return out


def _chunks(total: int, n: int) -> list[tuple[int, int]]:
    """The items in runs small enough that the processes finish together (~32 each), and
    few enough that their numbers fit in a pipe at once (4 bytes each, 64 KiB)."""
    size = max(1, total // (n * 32), -(-total // _MAX_CHUNKS))
    return [(i, min(i + size, total)) for i in range(0, total, size)]


_MAX_CHUNKS = 8192
_TOKEN = 4  # bytes of one chunk number


def _queue(count: int) -> int:
    """A pipe holding every chunk number, its write end closed: each process takes the
    next chunk by reading one number (a read this small is never split between readers),
    until the pipe is empty. Whoever is free takes the next one, so a slower worker
    (one that is still copying the pages it writes to) simply does fewer."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"".join(k.to_bytes(_TOKEN, "little") for k in range(count)))
    finally:
        os.close(write_end)
    return read_end


def _work(
    fn: Callable[[T], R], items: Sequence[T], chunks: list[tuple[int, int]], queue: int
) -> list[tuple[int, list[R]]]:
    """Chunks taken from the queue until it is empty, each with its answers."""
    done = []
    while token := os.read(queue, _TOKEN):
        k = int.from_bytes(token, "little")
        start, stop = chunks[k]
        done.append((k, [fn(x) for x in items[start:stop]]))
    return done


def _fork_worker(
    fn: Callable[[T], R],
    items: Sequence[T],
    chunks: list[tuple[int, int]],
    queue: int,
    records: Sequence[type],
) -> tuple[int, int]:
    """A forked child working through the queue; returns (pid, read end of its answers)."""
    read_end, write_end = os.pipe()
    _widen(write_end)
    pid = os.fork()
    if pid == 0:  # the child: answer, and leave without running any exit code
        code = 1
        try:
            os.close(read_end)
            _serve(fn, items, chunks, queue, records, write_end)
            code = 0
        except BaseException:  # the parent works its chunks out again
            pass
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def _widen(fd: int) -> None:
    """Room in the pipe for a worker's whole answer (a scan's half is ~0.6 MB), so that
    it is written while the work goes on and read at once at the end; where the pipe
    cannot grow, the worker waits for the reader instead."""
    import fcntl

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


_PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size for an unprivileged process


def _serve(
    fn: Callable[[T], R],
    items: Sequence[T],
    chunks: list[tuple[int, int]],
    queue: int,
    records: Sequence[type],
    out: int,
) -> None:
    """Each chunk taken from the queue, its answers pickled as (chunk, answers) as soon as
    they are known, then None: all sent. One pickler, whose memo the reader's one
    unpickler follows."""
    import _pickle

    with open(out, "wb") as pipe:
        pickler = _pickle.Pickler(pipe, protocol=5)
        pickler.dispatch_table = dict.fromkeys(records, _by_fields)
        while token := os.read(queue, _TOKEN):
            k = int.from_bytes(token, "little")
            start, stop = chunks[k]
            pickler.dump((k, [fn(x) for x in items[start:stop]]))
            pipe.flush()
        pickler.dump(None)


def _collect(child: tuple[int, int], records: Sequence[type]) -> list[tuple[int, list[Any]]]:
    """The chunks a worker sent whole, with their answers (all it took, unless it failed)."""
    pid, read_end = child
    try:
        data = _read_all(read_end)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    reader = _reader(data, records)
    done = []
    while True:
        try:
            sent = reader.load()
        except Exception:  # cut short or refused: the rest is worked out again here
            break
        if not (isinstance(sent, tuple) and len(sent) == 2):
            break  # None: all sent
        done.append(sent)
    return done


def _reader(data: bytes, records: Sequence[type]) -> Any:
    """An unpickler of ``data`` that can build only ``records`` and plain values (lists,
    tuples, sets, strings, numbers): the answers come from this process's own fork,
    through a pipe it made, and even so nothing else is reachable (the "restricting
    globals" recipe of the pickle documentation, as the catalog loader does)."""
    import _pickle
    import io

    allowed = {(cls.__module__, cls.__qualname__): cls for cls in records}

    class Restricted(_pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found = allowed.get((module, name))
            if found is None:
                raise _pickle.UnpicklingError(f"a worker's answer holds {module}.{name}")
            return found

    return Restricted(io.BytesIO(data))


def _stop(child: tuple[int, int]) -> None:
    import signal

    pid, read_end = child
    with contextlib.suppress(OSError):
        os.close(read_end)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _by_fields(record: Any) -> tuple[Any, ...]:
    """Pickle's reduction of a positional record: its class called with its fields."""
    cls = type(record)
    return cls, cls._init_values(record)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
