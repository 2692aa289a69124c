"""The RAM copy test's result, kept per machine so that speed estimates (and a CI gate on
them) do not move with the load of the moment.

The copy test reads 4-31 GB/s on one small VM depending on what else runs; a gate such as
``--min-tps 1`` flapped between runs. The first measurement on a machine is kept in the
user cache directory (``~/.cache/canirun/ram-bandwidth.json`` on Linux) under a key of what
the figure depends on: host name, CPU model, usable cores and total RAM. A later run reuses
it while the key matches and it is younger than ``MAX_AGE_DAYS``; ``--ram-bandwidth
measure`` measures again and replaces it. The file is written atomically, read with a size
limit, and ignored when unreadable: it can only spare a measurement, never stop a run.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canirun.records import Record, record

FORMAT = 1
MAX_AGE_DAYS = 30
MAX_BYTES = 1 << 20
MAX_MACHINES = 64  # one user's machines sharing a home directory (NFS)


@record(slots=True)
class Kept(Record):
    bytes_per_s: int
    measured_at: str  # ISO 8601, UTC


def cache_file() -> Path:
    from canirun.userdirs import user_cache_dir

    return Path(user_cache_dir()) / "ram-bandwidth.json"


def machine_key(host_name: str, cpu_model: str | None, cores: int, ram_bytes: int) -> str:
    """What the copy test's result depends on; a change of any of it measures again."""
    return f"{host_name}|{cpu_model or '?'}|{cores} cores|{ram_bytes} B"


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    machines = data.get("machines") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(machines, dict):
        return {}
    return machines


def lookup(key: str, now: datetime, path: Path | None = None) -> Kept | None:
    """The kept figure for this machine, if it is there, well-formed and not too old."""
    entry = _read(path or cache_file()).get(key)
    if not isinstance(entry, dict):
        return None
    value, when = entry.get("bytes_per_s"), entry.get("measured_at")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    try:
        measured = datetime.fromisoformat(str(when))
    except ValueError:
        return None
    if measured.tzinfo is None or not timedelta(0) <= now - measured <= timedelta(MAX_AGE_DAYS):
        return None
    return Kept(value, str(when))


def keep(key: str, bytes_per_s: int, now: datetime, path: Path | None = None) -> str | None:
    """Store this machine's figure; the problem as text when it could not be written."""
    path = path or cache_file()
    machines = _read(path)
    machines.pop(key, None)
    machines[key] = {"bytes_per_s": bytes_per_s, "measured_at": _iso(now)}
    while len(machines) > MAX_MACHINES:  # the oldest written go first
        machines.pop(next(iter(machines)))
    text = json.dumps({"format": FORMAT, "machines": machines}, indent=1, sort_keys=False)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(text + "\n", encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        return f"{path}: {exc.strerror or exc}"
    return None


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat()


def now_utc() -> datetime:
    return datetime.now(UTC)
