"""Container limits from cgroups v1 and v2: memory limit, memory in use, CPU quota.

The cgroup of this process is found through ``/proc/self/cgroup`` and the
mount table (``/proc/self/mountinfo``), then every ancestor up to the mount
point is read: a limit set on a parent binds the child too, so the tightest one
wins. All paths hang off ``root`` so tests can use fixture trees.
"""

from __future__ import annotations

import os
import re
from dataclasses import field
from pathlib import Path, PurePosixPath

from canirun.records import Record, record

# cgroup v1 writes "no limit" as a huge page-aligned number (LONG_MAX rounded
# down to the page size); anything at or above 2^62 is treated as unlimited.
_V1_UNLIMITED = 2**62


@record(slots=True)
class CgroupLimits(Record):
    version: int | None = None
    memory_limit: int | None = None
    memory_used: int | None = None
    cpu_quota: float | None = None
    # A limit file exists but could not be read or parsed: the limit is unknown,
    # never "no limit".
    memory_limit_unreadable: bool = False
    problems: tuple[str, ...] = field(default=())


@record(slots=True)
class _Mount(Record):
    root: str
    point: str
    fstype: str
    options: frozenset[str]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _unreadable(path: Path) -> bool:
    """The file is there but could not be read (a missing file just means "not set")."""
    try:
        return path.exists()
    except OSError:
        return True


def _mounts(root: Path) -> list[_Mount]:
    text = _read(root / "proc/self/mountinfo") or ""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        parts, tail = left.split(), right.split()
        if not sep or len(parts) < 5 or len(tail) < 3 or not tail[0].startswith("cgroup"):
            continue
        options = frozenset(tail[2].split(",")) | frozenset(parts[5].split(","))
        mounts.append(_Mount(parts[3], parts[4], tail[0], options))
    return mounts


def _memberships(root: Path) -> dict[str, str]:
    """Controller ("memory", "cpu", or "" for the v2 unified tree) -> cgroup path."""
    text = _read(root / "proc/self/cgroup") or ""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _chain(root: Path, mount: _Mount, cgroup_path: str) -> list[Path]:
    """Directories from this process's cgroup up to the mount point, leaf first."""
    base = root / mount.point.lstrip("/")
    rel = PurePosixPath(cgroup_path)
    try:
        rel = rel.relative_to(mount.root)
    except ValueError:
        rel = PurePosixPath("/")  # a cgroup namespace hides the prefix: we sit at the root
    parts = [p for p in rel.parts if p != "/"]
    dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if os.path.isdir(d)]  # never raises, unlike Path.is_dir


_INT = re.compile(r"-?[0-9]{1,19}", re.ASCII)  # what the kernel writes: int64 in decimal


def _int_or_none(text: str | None) -> int | None:
    if text is None or not _INT.fullmatch(text.strip()):
        return None
    return int(text)


def _stat_value(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and _INT.fullmatch(value.strip()) and not value.strip().startswith("-"):
            return int(value)
    return None


def _tightest(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _v2(chain: list[Path]) -> CgroupLimits:
    problems: list[str] = []
    limits: list[int | None] = []
    quotas: list[float | None] = []
    unreadable = False
    for d in chain:
        raw = _read(d / "memory.max")
        if raw is None and _unreadable(d / "memory.max"):
            problems.append(f"{d / 'memory.max'}: cannot be read")
            unreadable = True
        if raw is not None and raw != "max":
            value = _int_or_none(raw)
            if value is None:
                problems.append(f"{d / 'memory.max'}: unreadable value {raw[:40]!r}")
                unreadable = True
            limits.append(value)
        quotas.append(_v2_quota(d, problems))
    used = None
    if chain:
        current = _int_or_none(_read(chain[0] / "memory.current"))
        inactive = _stat_value(_read(chain[0] / "memory.stat"), "inactive_file")
        used = None if current is None else max(0, current - (inactive or 0))
    known_quotas = [q for q in quotas if q is not None]
    return CgroupLimits(
        version=2,
        memory_limit=_tightest(limits),
        memory_used=used,
        cpu_quota=min(known_quotas) if known_quotas else None,
        memory_limit_unreadable=unreadable,
        problems=tuple(problems),
    )


def _v2_quota(d: Path, problems: list[str]) -> float | None:
    raw = _read(d / "cpu.max")
    if raw is None:
        return None
    quota, _, period = raw.partition(" ")
    if quota == "max":
        return None
    q, p = _int_or_none(quota), _int_or_none(period or "100000")
    if q is None or not p or q <= 0:
        problems.append(f"{d / 'cpu.max'}: unreadable value {raw[:40]!r}")
        return None
    return q / p


def _v1(memory_chain: list[Path], cpu_chain: list[Path]) -> CgroupLimits:
    problems: list[str] = []
    limits = []
    unreadable = False
    for d in memory_chain:
        raw = _read(d / "memory.limit_in_bytes")
        value = _int_or_none(raw)
        if raw is None and _unreadable(d / "memory.limit_in_bytes"):
            problems.append(f"{d / 'memory.limit_in_bytes'}: cannot be read")
            unreadable = True
        if raw is not None and value is None:
            problems.append(f"{d / 'memory.limit_in_bytes'}: unreadable value {raw[:40]!r}")
            unreadable = True
        limits.append(value if value is not None and 0 < value < _V1_UNLIMITED else None)
    used = None
    if memory_chain:
        usage = _int_or_none(_read(memory_chain[0] / "memory.usage_in_bytes"))
        stat = _read(memory_chain[0] / "memory.stat")
        inactive = _stat_value(stat, "total_inactive_file") or _stat_value(stat, "inactive_file")
        used = None if usage is None else max(0, usage - (inactive or 0))
    quotas = []
    for d in cpu_chain:
        quota = _int_or_none(_read(d / "cpu.cfs_quota_us"))
        period = _int_or_none(_read(d / "cpu.cfs_period_us"))
        if quota is not None and quota > 0 and period:
            quotas.append(quota / period)
    return CgroupLimits(
        version=1,
        memory_limit=_tightest(limits),
        memory_used=used,
        cpu_quota=min(quotas) if quotas else None,
        memory_limit_unreadable=unreadable,
        problems=tuple(problems),
    )


def read_cgroup_limits(root: Path = Path("/")) -> CgroupLimits:
    """The effective limits of this process's cgroup, or an empty result outside cgroups."""
    members = _memberships(root)
    mounts = _mounts(root)
    v1_memory = next((m for m in mounts if m.fstype == "cgroup" and "memory" in m.options), None)
    if v1_memory is not None and "memory" in members:
        v1_cpu = next((m for m in mounts if m.fstype == "cgroup" and "cpu" in m.options), None)
        cpu_chain = _chain(root, v1_cpu, members["cpu"]) if v1_cpu and "cpu" in members else []
        return _v1(_chain(root, v1_memory, members["memory"]), cpu_chain)
    unified = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if unified is not None and "" in members:
        return _v2(_chain(root, unified, members[""]))
    return CgroupLimits()
