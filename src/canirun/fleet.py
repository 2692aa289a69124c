"""Merge scan/check reports from many machines into one model x machine matrix.

Lab admins keep one JSON report per machine (CI artifacts); ``canirun fleet``
reads files, folders and globs of them. A machine is its hostname plus its
hashed machine id; its newest full scan is the base, and newer partial reports
(a check, a scan limited by --precision/--framework) update the models they
rated; what-if reports (--gpu/--vram/--ram) describe no real machine and are
skipped. A file that is not a
readable canirun scan report (corrupt, truncated, foreign, another major schema
version) is skipped with a reason and counted: one bad file never aborts the
merge. Only what the matrix needs is kept from each report, so memory stays
flat however many reports are read.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canirun.envelope import SCHEMA_VERSION
from canirun.errors import InputError
from canirun.inputs import REPORT_LIMIT, ParseRefused, ReadRefused, parse_json, read_limited

READABLE_MAJOR = SCHEMA_VERSION.split(".")[0]
# Below this many files a process pool costs more than it saves.
POOL_THRESHOLD = 64


@dataclass(frozen=True, slots=True)
class Cell:
    verdict: str
    precision: str | None
    framework: str | None
    tokens_per_second: float | None


@dataclass(frozen=True, slots=True)
class MachineReport:
    """What the matrix keeps of one report."""

    key: str
    hostname: str
    machine_id: str | None
    created_at: str
    file: str
    schema_version: str
    cpu: str | None
    ram_bytes: int | None
    gpus: tuple[str, ...]
    models: dict[str, tuple[str, str]]  # model_id -> (name, category)
    cells: dict[str, Cell]
    partial: bool = False  # a check, or a scan of part of the catalog


@dataclass(frozen=True, slots=True)
class Skipped:
    file: str
    reason: str


@dataclass
class Fleet:
    machines: list[MachineReport] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    superseded: int = 0  # older reports of a machine that has a newer one
    partial_merged: int = 0  # partial reports whose models updated a machine's column

    @property
    def models(self) -> list[tuple[str, str, str]]:
        """(model_id, name, category), in the order the reports list them."""
        seen: dict[str, tuple[str, str]] = {}
        for m in self.machines:
            for model_id, info in m.models.items():
                seen.setdefault(model_id, info)
        return [(mid, name, cat) for mid, (name, cat) in seen.items()]


# Bounds on what one `canirun fleet` reads: far above a real lab, low enough
# that a symlink loop or a glob over / ends quickly.
MAX_FILES = 100_000
MAX_DEPTH = 32


def _walk_json(folder: Path) -> list[Path]:
    """Every *.json under ``folder``: symlinks followed, each real folder entered once.

    A symlink loop (``a/up -> ..``) would otherwise be walked again at every
    level; remembering (device, inode) makes the walk linear in the tree.
    """
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    stack = [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            info = current.stat()
            if (info.st_dev, info.st_ino) in seen or depth > MAX_DEPTH:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except (OSError, ValueError):
            continue  # unreadable: the files in it are simply not found
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:  # a loop of links: listed, so the merge says why it is skipped
                is_dir = False
            if is_dir:
                stack.append((path, depth + 1))
            elif entry.name.endswith(".json"):
                found.append(path)
                if len(found) > MAX_FILES:
                    raise InputError(f"fleet: {folder}: more than {MAX_FILES:,} files")
    return sorted(found)


_MAGIC = re.compile(r"[*?[]")


def _glob(pattern: str) -> list[Path]:
    """glob.glob, but ``**`` walks with ``_walk_json``'s loop protection.

    glob's own ``**`` follows symlinked folders without remembering them, so a
    loop is walked exponentially until names grow too long.
    """
    parts = Path(pattern).parts
    if "**" not in parts:
        return [Path(m) for m in glob.glob(pattern)]
    first = next(i for i, part in enumerate(parts) if _MAGIC.search(part) or part == "**")
    base = Path(*parts[:first]) if first else Path(".")
    rest = "/".join(parts[first:])
    wanted = re.compile(_translate(rest))
    matches = []
    for path in _walk_json(base):
        rel = path.relative_to(base).as_posix()
        hidden = any(part.startswith(".") for part in rel.split("/"))  # as glob skips them
        if wanted.fullmatch(rel) and not hidden:
            matches.append(path)
    return matches


def _translate(pattern: str) -> str:
    """A glob pattern over "/"-separated paths as a regex; ``**/`` is any folders."""
    out = []
    for i, part in enumerate(pattern.split("/")):
        last = i == len(pattern.split("/")) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        body = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        out.append(body if last else body + "/")
    return "".join(out)


def _safe(check: Any, path: Path) -> bool:
    try:
        return bool(check(path))
    except (OSError, ValueError):  # a name too long, a NUL byte, an unreadable parent
        return False


def expand(paths: Iterable[str]) -> list[Path]:
    """Files, folders (their *.json, recursively) and globs, each file once."""
    found: dict[str, Path] = {}

    def add(path: Path) -> None:
        try:
            key = os.path.realpath(path)
        except (OSError, ValueError):
            key = str(path)
        found.setdefault(key, path)
        if len(found) > MAX_FILES:
            raise InputError(f"fleet: more than {MAX_FILES:,} files")

    for text in paths:
        matches = _glob(text) if glob.has_magic(text) else [Path(text)]
        if not matches:
            raise InputError(f"fleet: {text!r} matches no file")
        for path in matches:
            if _safe(Path.is_dir, path):
                for child in _walk_json(path):
                    add(child)
            elif _safe(os.path.lexists, path):
                add(path)  # read_report says why it cannot be read, if it cannot
            else:
                raise InputError(f"fleet: {text!r} does not exist")
    return list(found.values())


class _Foreign(Exception):
    pass


def _get(data: Any, *keys: str, kind: type | tuple[type, ...] = object) -> Any:
    value = data
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise _Foreign(f"no {'.'.join(keys)}")
        value = value[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise _Foreign(f"{'.'.join(keys)} has the wrong type")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _cells(data: dict[str, Any]) -> tuple[dict[str, tuple[str, str]], dict[str, Cell]]:
    models: dict[str, tuple[str, str]] = {}
    cells: dict[str, Cell] = {}
    for row in _get(data, "summary", kind=list):
        if not isinstance(row, dict):
            raise _Foreign("summary rows are not objects")
        model_id = _get(row, "model_id", kind=str)
        models[model_id] = (_get(row, "name", kind=str), _get(row, "category", kind=str))
        tps = row.get("tokens_per_second")
        cells[model_id] = Cell(
            verdict=_get(row, "verdict", kind=str),
            precision=row.get("precision") if isinstance(row.get("precision"), str) else None,
            framework=row.get("framework") if isinstance(row.get("framework"), str) else None,
            tokens_per_second=float(tps)
            if isinstance(tps, (int, float)) and not isinstance(tps, bool)
            else None,
        )
    return models, cells


_RESULTS_KEY = re.compile(rb'"results"\s*:\s*\[')
_NON_FINITE = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)|\d[eE][+-]?\d{3}")


def _without_results(raw: bytes) -> Any | None:
    """Parse a canirun report without its `results` array, or None if that is unsafe.

    `results` is the report's last key and 96 % of its bytes, and the matrix
    does not need it. Its key is the last `"results"` in the file (summary rows
    come before it and hold a number under that name; results rows have no such
    key; inside a JSON string every quote is escaped), so cutting there and
    closing the object gives the rest of the report. Anything unexpected
    returns None: the caller then parses the whole file.
    """
    start = raw.rfind(b'"results"')
    if start < 0 or _RESULTS_KEY.match(raw, start) is None:
        return None
    head = raw[:start].rstrip()
    if not head.endswith(b","):
        return None
    try:
        data = parse_json(head[:-1] + b"}")
    except ValueError:  # ParseRefused too: the caller then parses the whole file
        return None
    return data if isinstance(data, dict) and "summary" in data else None


def _load(raw: bytes) -> Any:
    # Only canirun's own layout (indent 2) takes the fast path, and only when the
    # file ends where that layout closes the last result, `results` and the report:
    # "    }", a top-level "  ]" then "}". Anything else, a truncated file included
    # (even one that happens to end in "  ]\n}"), is parsed whole. A bare NaN/Infinity
    # or a float past its range in the skipped part would go unseen: anything that
    # looks like one sends the file to the strict full parse.
    if raw.rstrip().endswith(b"\n    }\n  ]\n}") and not _NON_FINITE.search(raw):
        data = _without_results(raw)
        if data is not None:
            return data
    return parse_json(raw)


def read_report(path: Path) -> MachineReport | Skipped:
    """One report file, reduced to what the matrix needs; never raises."""
    try:
        raw = read_limited(path, REPORT_LIMIT)
    except ReadRefused as exc:
        return Skipped(str(path), str(exc))
    try:
        data = _load(raw)
    except ParseRefused as exc:
        return Skipped(str(path), str(exc))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return Skipped(str(path), f"not valid JSON (corrupt or truncated?): {exc}")
    try:
        version = _get(data, "schema_version", kind=str)
        if _get(data, "tool", "name", kind=str) != "canirun":
            raise _Foreign("not written by canirun")
        if version.split(".")[0] != READABLE_MAJOR:
            return Skipped(str(path), f"schema {version}: this canirun reads {READABLE_MAJOR}.x")
        kind = _get(data, "kind", kind=str)
        if kind not in ("scan", "check", "local"):
            raise _Foreign(f"a {kind!r} report has no model results (use scan, check or local)")
        if data.get("basis") == "what-if":
            return Skipped(str(path), "a what-if report (--gpu/--vram/--ram): not a real machine")
        partial = data.get("partial")
        partial = kind != "scan" if not isinstance(partial, bool) else partial
        hostname = _get(data, "machine", "hostname", kind=(str, type(None))) or "unknown host"
        machine_id = _get(data, "machine", "id", kind=(str, type(None)))
        gpus = tuple(
            str(g.get("name"))
            for g in _get(data, "hardware", "gpus", kind=list)
            if isinstance(g, dict)
        )
        ram = _get(data, "hardware", "memory", "total_bytes", kind=(int, type(None)))
        models, cells = _cells(data)
        return MachineReport(
            key=f"{hostname}#{machine_id or '?'}",
            hostname=hostname,
            machine_id=machine_id,
            created_at=_get(data, "created_at", kind=str),
            file=str(path),
            schema_version=version,
            cpu=_get(data, "hardware", "cpu", "model", kind=(str, type(None))),
            ram_bytes=ram,
            gpus=gpus,
            models=models,
            cells=cells,
            partial=partial,
        )
    except _Foreign as exc:
        return Skipped(str(path), f"not a canirun scan report: {exc}")


MAX_WORKERS = 8
# What one worker may need at worst: a report at the size limit, parsed.
WORKER_MEMORY = 512 * 2**20


def pool_size(workers: int | None = None) -> int:
    """Worker processes for many reports: the usable cores, at most 8, and no more
    than the free memory holds (one worker per 512 MiB; unknown memory: none).

    os.cpu_count() is the host's: a container pinned to 2 of 128 cores that
    started 128 workers would thrash its quota and hold 128 interpreters.
    """
    if workers:
        return max(1, min(workers, MAX_WORKERS))
    from canirun.hardware.cgroup import read_cgroup_limits
    from canirun.hardware.cpu import usable_core_count
    from canirun.hardware.system import free_memory

    limits = read_cgroup_limits()
    room = free_memory(limits)
    by_memory = room // WORKER_MEMORY if room is not None else 1
    return max(1, min(usable_core_count(limits.cpu_quota), MAX_WORKERS, by_memory))


def _read_all(paths: list[Path], workers: int | None) -> list[MachineReport | Skipped]:
    count = pool_size(workers)
    if len(paths) < POOL_THRESHOLD or count < 2:
        return [read_report(p) for p in paths]
    try:
        with ProcessPoolExecutor(max_workers=count) as pool:
            return list(pool.map(read_report, paths, chunksize=16))
    except (OSError, ImportError, BrokenProcessPool):
        # No working /dev/shm (read-only or missing: the pool's semaphores live
        # there), no fork: reading in this process gives the same answer, slower.
        return [read_report(p) for p in paths]


def merge(paths: list[Path], *, workers: int | None = None) -> Fleet:
    fleet = Fleet()
    by_machine: dict[str, list[MachineReport]] = {}
    for item in _read_all(paths, workers):
        if isinstance(item, Skipped):
            fleet.skipped.append(item)
        else:
            by_machine.setdefault(item.key, []).append(item)
    merged = [_combine(reports, fleet) for reports in by_machine.values()]
    fleet.machines = sorted(merged, key=lambda m: m.hostname)
    return fleet


def _combine(reports: list[MachineReport], fleet: Fleet) -> MachineReport:
    """One machine's column: its newest full scan, updated by newer partial reports.

    A check of one model must not empty the column a full scan filled; without
    any full scan, the partial reports are merged oldest first.
    """
    reports.sort(key=lambda r: (r.created_at, r.file))
    full = [r for r in reports if not r.partial]
    base = full[-1] if full else reports[0]
    newer = [
        r for r in reports if r.partial and (r.created_at, r.file) > (base.created_at, base.file)
    ]
    used = 1 + len(newer)
    fleet.superseded += len(reports) - used
    fleet.partial_merged += len(newer) + (1 if base.partial else 0)
    if not newer:
        return base
    models, cells = dict(base.models), dict(base.cells)
    for r in newer:
        models.update(r.models)
        cells.update(r.cells)
    last = newer[-1]
    return MachineReport(
        key=base.key,
        hostname=last.hostname,
        machine_id=last.machine_id,
        created_at=last.created_at,
        file=last.file,
        schema_version=last.schema_version,
        cpu=last.cpu,
        ram_bytes=last.ram_bytes,
        gpus=last.gpus,
        models=models,
        cells=cells,
        partial=base.partial,
    )
