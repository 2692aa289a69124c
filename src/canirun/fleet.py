"""Merge scan/check reports from many machines into one model x machine matrix.

Lab admins keep one JSON report per machine (CI artifacts); ``canirun fleet``
reads files, folders and globs of them. A machine is its hostname plus its
hashed machine id; its newest full scan is the base, and newer partial reports
(a check, a scan limited by --precision/--framework) update the models they
rated; what-if reports (--gpu/--vram/--ram) describe no real machine and are
skipped. A file that is not a readable canirun scan report (corrupt,
truncated, foreign, another major schema version) is skipped with a reason and
counted: one bad file never aborts the merge.

Only what the matrix needs is read and kept: the fields it shows are checked
(types, finite numbers) and the rest of a report is not fleet's to judge. In
canirun's own layout the per-variant `results` (96 % of a full scan) are not
even read (see ``_head``); any other layout is parsed whole and gives the same
matrix. Memory stays flat however many reports are read.
"""

from __future__ import annotations

import functools
import glob
import json
import math
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canirun.envelope import SCHEMA_VERSION
from canirun.errors import InputError
from canirun.inputs import MAX_DEPTH as MAX_NESTING
from canirun.inputs import (
    REPORT_LIMIT,
    ParseRefused,
    ReadRefused,
    check_shape,
    read_limited,
)
from canirun.records import Record, record

READABLE_MAJOR = SCHEMA_VERSION.split(".")[0]


@record(slots=True)
class Cell(Record):
    verdict: str
    precision: str | None
    framework: str | None
    tokens_per_second: float | None


@record(slots=True)
class MachineReport(Record):
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


@record(slots=True)
class Skipped(Record):
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


class _BadNumber(Exception):
    """A number fleet uses that no canirun report holds; the message is the reason."""


# Integers beyond int64 and non-finite floats mean nothing in a report (as inputs.check_shape).
_BIGGEST = 2**63


def _number(value: Any, where: str) -> Any:
    """``value``, unless it is a number no report means (checked only where fleet uses it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) >= _BIGGEST:
        raise _BadNumber(f"{where}: the number is too large")
    if isinstance(value, float) and not math.isfinite(value):
        token = "NaN" if math.isnan(value) else "Infinity"  # as JSON files spell them
        raise _BadNumber(f"{where}: {token} is not a finite number, which canirun needs")
    return value


class _Interned:
    """One shared object per distinct cell and model name: a fleet of similar machines
    repeats them thousands of times, and frozen values can be shared. Keyed by the
    values as read (and the speed's type: True == 1 in a key, but a bool is no speed)."""

    def __init__(self) -> None:
        self.cells: dict[tuple[Any, ...], Cell] = {}
        self.models: dict[tuple[str, str], tuple[str, str]] = {}

    def cell(self, i: int, verdict: str, precision: Any, framework: Any, tps: Any) -> Cell:
        key = (verdict, precision, framework, tps, type(tps))
        try:
            return self.cells[key]
        except KeyError:
            found = self.cells[key] = _cell(i, verdict, precision, framework, tps)
        except TypeError:  # a list or an object where a name belongs: not kept
            found = _cell(i, verdict, precision, framework, tps)
        return found


def _cell(i: int, verdict: str, precision: Any, framework: Any, tps: Any) -> Cell:
    tps = _number(tps, f"summary.{i}.tokens_per_second")
    return Cell(
        verdict=verdict,
        precision=precision if isinstance(precision, str) else None,
        framework=framework if isinstance(framework, str) else None,
        tokens_per_second=float(tps)
        if isinstance(tps, (int, float)) and not isinstance(tps, bool)
        else None,
    )


def _cells(
    data: dict[str, Any], interned: _Interned
) -> tuple[dict[str, tuple[str, str]], dict[str, Cell]]:
    models: dict[str, tuple[str, str]] = {}
    cells: dict[str, Cell] = {}
    known = interned.models
    for i, row in enumerate(_get(data, "summary", kind=list)):
        if not isinstance(row, dict):
            raise _Foreign("summary rows are not objects")
        get = row.get
        model_id: Any = get("model_id")
        name: Any = get("name")
        category: Any = get("category")
        verdict: Any = get("verdict")
        if not (
            type(model_id) is str
            and type(name) is str
            and type(category) is str
            and type(verdict) is str
        ):
            for key in ("model_id", "name", "category", "verdict"):
                _get(row, key, kind=str)  # the first one missing or wrong says why
        info = (name, category)
        models[model_id] = known.setdefault(info, info)
        cells[model_id] = interned.cell(
            i, verdict, get("precision"), get("framework"), get("tokens_per_second")
        )
    return models, cells


# What the matrix reads of a report, and of each of its summary rows.
HEAD_KEYS: tuple[str, ...] = ("schema_version", "kind", "tool", "created_at", "basis", "partial")
HEAD_KEYS += ("machine", "hardware", "summary")
ROW_KEYS: tuple[str, ...] = ("model_id", "name", "category", "verdict", "precision")
ROW_KEYS += ("framework", "tokens_per_second")


@functools.cache
def _slim() -> Any:
    """A JSON reader that keeps only what the matrix reads (HEAD_KEYS, ROW_KEYS).

    pydantic-core's validator (Rust, and pydantic's own engine; pydantic itself is
    not imported) with a schema of optional keys of any value: the keys fleet
    does not read are checked as JSON and dropped, never built as Python objects
    (most of a report's head is the summary rows' reasons and explanations). The
    values kept are the plain JSON values json.loads gives; ``_reduce`` checks
    them exactly as it checks a file parsed whole. A summary row that is not an
    object fails here, and the whole file then says why.
    """
    from pydantic_core import SchemaValidator

    def optional(keys: tuple[str, ...], **schemas: Any) -> dict[str, Any]:
        fields = {k: schemas.get(k, {"type": "any"}) for k in keys}
        return {
            "type": "typed-dict",
            "fields": {
                k: {"type": "typed-dict-field", "schema": v, "required": False}
                for k, v in fields.items()
            },
        }

    row = optional(ROW_KEYS)
    return SchemaValidator(optional(HEAD_KEYS, summary={"type": "list", "items_schema": row}))


_RESULTS_KEY = re.compile(rb'"results"\s*:\s*\[')
# canirun's own layout (json, indent 2; pinned by tests/test_golden.py) ends a report with
# the last row of a top-level array: "    }", "  ]", "}". In that layout a newline and
# "}" at column 0 only ever close the top-level object, so a file ending so is whole.
_LAYOUT_END = b"\n    }\n  ]\n}"
_HEAD_CHUNK = 64 * 1024  # a full scan's head is about 150 KB


def _head(path: Path) -> bytearray | None:
    """The report up to its top-level `results`, as a JSON object, or None.

    `results` is 96 % of a full report and the matrix does not use it. When the
    file ends as canirun's layout does, only the part before the first
    ``"results": [`` is read, closed with "}". That the cut parses as one object
    proves the key is the report's own (a nested one would leave brackets open),
    whatever the layout before it. Anything else (another layout, a refusal,
    a cut that does not parse) returns None: read_report then reads the whole
    file, which gives the same answer.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > REPORT_LIMIT:
            return None
        end = os.pread(fd, 64, max(0, info.st_size - 64)).rstrip()
        if not end.endswith(_LAYOUT_END):
            return None
        buf = bytearray()
        while len(buf) < info.st_size:
            chunk = os.read(fd, _HEAD_CHUNK)
            if not chunk:
                return None
            searched = max(0, len(buf) - 64)  # a key split between two reads
            buf += chunk
            found = _RESULTS_KEY.search(buf, searched)
            if found is not None:
                del buf[found.start() :]
                head = buf.rstrip()
                if not head.endswith(b","):
                    return None
                head[-1:] = b"}"
                return head
        return None
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_whole(raw: bytes) -> Any:
    """json.loads, with inputs.parse_json's refusals but not its check of every number:
    only the numbers fleet uses are checked (``_number``), whichever way it was read."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ParseRefused(f"nested more than {MAX_NESTING} levels deep") from None
    except ValueError as exc:
        if "Exceeds the limit" in str(exc):
            raise ParseRefused("an integer with thousands of digits") from None
        raise


def read_report(path: Path, interned: _Interned | None = None) -> MachineReport | Skipped:
    """One report file, reduced to what the matrix needs; never raises."""
    interned = interned or _Interned()
    head = _head(path)
    if head is not None:
        try:
            found = _reduce(_slim().validate_json(head), path, interned)
        except (ValueError, RecursionError, _Foreign, _BadNumber):
            pass  # the whole file says why, as any other layout would
        else:
            return found
    try:
        raw = read_limited(path, REPORT_LIMIT)
    except ReadRefused as exc:
        return Skipped(str(path), str(exc))
    try:
        data = _parse_whole(raw)
    except ParseRefused as exc:
        return Skipped(str(path), str(exc))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return Skipped(str(path), f"not valid JSON (corrupt or truncated?): {exc}")
    try:
        return _reduce(data, path, interned)
    except _BadNumber as exc:
        return Skipped(str(path), str(exc))
    except _Foreign as exc:
        try:  # a document nested too deep is better called so
            check_shape(data)
        except ParseRefused as deep:
            return Skipped(str(path), str(deep))
        return Skipped(str(path), f"not a canirun scan report: {exc}")


def _reduce(data: Any, path: Path, interned: _Interned) -> MachineReport | Skipped:
    """The matrix's part of a parsed report; _Foreign or _BadNumber when it has none."""
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
        str(_number(g.get("name"), f"hardware.gpus.{i}.name"))
        for i, g in enumerate(_get(data, "hardware", "gpus", kind=list))
        if isinstance(g, dict)
    )
    ram = _number(
        _get(data, "hardware", "memory", "total_bytes", kind=(int, type(None))),
        "hardware.memory.total_bytes",
    )
    models, cells = _cells(data, interned)
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


def merge(paths: list[Path]) -> Fleet:
    """Read scan/check reports into one column per machine: its newest full scan (by
    created_at, then file name), updated by newer partial reports (checks, what-ifs);
    files that are not canirun reports are listed as skipped, never fatal.

    One file at a time, in this process: each is reduced to its column as it is
    read (about a millisecond for a full scan), so 1,000 reports take a second and
    the memory of one; a pool of worker processes cost more (starting, sending
    every column back) than it saved.
    """
    fleet = Fleet()
    by_machine: dict[str, list[MachineReport]] = {}
    interned = _Interned()
    for item in (read_report(p, interned) for p in paths):
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
