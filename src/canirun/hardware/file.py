"""Hardware files: a machine described by hand, or a report from another machine.

Either a bare hardware object (``{"cpu": {...}, "memory": {...}, "gpus": [...]}``)
or a whole canirun report (its ``hardware`` and ``machine`` are used), as JSON
or TOML. It loads into the same ``Host`` a live probe returns, so everything
downstream is shared. Figures a hand-written file leaves out stay unknown,
except free/available memory, which defaults to the total and is listed in
``hardware.assumed``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from canirun.errors import InputError
from canirun.hardware.model import Basis, Hardware, Host, Machine, ProbeIssue
from canirun.inputs import HARDWARE_LIMIT, ParseRefused, parse_json, parse_toml, read_bounded


def _read(path: Path) -> Any:
    raw = read_bounded(path, HARDWARE_LIMIT, f"--hardware {path}")
    kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
    try:
        text = raw.decode("utf-8-sig")
        return parse_toml(text) if kind == "TOML" else parse_json(text)
    except ParseRefused as exc:
        raise InputError(f"--hardware {path}: {exc}") from None
    except ValueError as exc:  # bad UTF-8, JSONDecodeError, TOMLDecodeError
        raise InputError(f"--hardware {path}: not valid {kind}: {exc}") from None


def _negative(value: Any, where: str = "") -> str | None:
    """The dotted path of the first negative number, if any."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return where if value < 0 else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _negative(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _lone_surrogate(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string that is not valid Unicode (JSON allows "\\ud800")."""
    if isinstance(value, str):
        return where or "top level" if any("\ud800" <= c <= "\udfff" for c in value) else None
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _lone_surrogate(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _as_json(value: Any) -> str:
    return json.dumps(value, default=str)


# Sane ranges for what a machine can have: far above any real one, low enough
# that every calculation stays fast and exact.
_MAX_CORES = 2**16
_MAX_GPUS = 256
_MAX_BYTES = 2**60  # 1 EiB
_COUNTS = ("physical_cores", "logical_cores", "usable_cores", "quota_cores", "affinity_cores")
_CC = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}", re.ASCII)


def _too_big(section: Any, keys: tuple[str, ...] | None, limit: int, where: str) -> str | None:
    if not isinstance(section, dict):
        return None
    for key, value in section.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        wanted = key in keys if keys is not None else key.endswith("_bytes")
        if wanted and numeric and value > limit:
            return f"{where}.{key}: {value:g} is more than any machine has (at most {limit:,})"
    return None


def _out_of_range(hw: Any) -> str | None:
    """The first figure outside what any machine has, or a malformed compute capability."""
    if not isinstance(hw, dict):
        return None
    gpus = hw.get("gpus")
    gpus = gpus if isinstance(gpus, list) else []
    if len(gpus) > _MAX_GPUS:
        return f"gpus: {len(gpus)} GPUs is more than {_MAX_GPUS}"
    found = _too_big(hw.get("cpu"), _COUNTS, _MAX_CORES, "cpu") or _too_big(
        hw.get("memory"), None, _MAX_BYTES, "memory"
    )
    found = found or _too_big(hw.get("disk"), None, _MAX_BYTES, "disk")
    for i, gpu in enumerate(gpus):
        found = found or _too_big(gpu, None, _MAX_BYTES, f"gpus.{i}")
        cc = gpu.get("compute_capability") if isinstance(gpu, dict) else None
        if found is None and isinstance(cc, str) and not _CC.fullmatch(cc):
            found = f"gpus.{i}.compute_capability: {cc!r} is not a compute capability such as '8.9'"
    return found


def _validate(path: Path, data: Any) -> tuple[Hardware, Machine, tuple[ProbeIssue, ...]]:
    from pydantic import TypeAdapter, ValidationError

    if not isinstance(data, dict):
        raise InputError(f"--hardware {path}: expected an object with cpu, memory and gpus")
    is_report = "hardware" in data
    hw_data = data["hardware"] if is_report else data
    machine_data = data.get("machine", {}) if is_report else {}
    issues_data = data.get("probe_issues", []) if is_report else []
    bad = _negative(hw_data)
    if bad:
        raise InputError(f"--hardware {path}: {bad}: must not be negative")
    broken = _lone_surrogate(data)
    if broken:
        raise InputError(f"--hardware {path}: {broken}: not valid Unicode (a lone surrogate)")
    problem = _out_of_range(hw_data)
    if problem:
        prefix = "hardware." if is_report else ""
        raise InputError(f"--hardware {path}: {prefix}{problem}")
    try:
        # Strict, in JSON mode: `true` is not 1 byte, "64" is not a number, 1.0 is not
        # a count (lists still read as tuples). TOML dates come back as strings and fail.
        hardware = TypeAdapter(Hardware).validate_json(_as_json(hw_data), strict=True)
        machine = TypeAdapter(Machine).validate_json(_as_json(machine_data or {}), strict=True)
        issues = TypeAdapter(tuple[ProbeIssue, ...]).validate_json(
            _as_json(issues_data or []), strict=True
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        prefix = "hardware." if is_report else ""
        raise InputError(f"--hardware {path}: {prefix}{where}: {err['msg']}") from None
    return hardware, machine, issues


def _fill_assumptions(hw: Hardware) -> Hardware:
    """Free figures a file leaves out default to the totals, and say so."""
    assumed = list(hw.assumed)
    memory, cpu = hw.memory, hw.cpu
    if memory.available_bytes is None and memory.total_bytes is not None:
        memory = dataclasses.replace(memory, available_bytes=memory.total_bytes)
        assumed.append("memory.available_bytes")
    if cpu.usable_cores is None and cpu.logical_cores is not None:
        cpu = dataclasses.replace(cpu, usable_cores=float(cpu.logical_cores))
        assumed.append("cpu.usable_cores")
    gpus = []
    for i, gpu in enumerate(hw.gpus):
        filled = gpu if gpu.index is not None else dataclasses.replace(gpu, index=i)
        if gpu.memory_free_bytes is None and gpu.memory_total_bytes is not None:
            filled = dataclasses.replace(filled, memory_free_bytes=gpu.memory_total_bytes)
            assumed.append(f"gpus[{i}].memory_free_bytes")
        gpus.append(filled)
    return dataclasses.replace(
        hw, memory=memory, cpu=cpu, gpus=tuple(gpus), assumed=tuple(dict.fromkeys(assumed))
    )


def load_hardware_file(path: Path) -> Host:
    data = _read(path)
    hardware, machine, issues = _validate(path, data)
    note = ProbeIssue("hardware-file", f"hardware read from {path}, not probed here", "info")
    # A what-if report stays a what-if: reading it back does not make it a real machine.
    basis: Basis = (
        "what-if" if isinstance(data, dict) and data.get("basis") == "what-if" else "file"
    )
    return Host(
        hardware=_fill_assumptions(hardware),
        machine=machine,
        issues=(note, *issues),
        basis=basis,
    )


def load_hardware_data(data: Any, where: str) -> Host:
    """A report or hardware object already parsed (say, sent back by a cluster node)."""
    hardware, machine, issues = _validate(Path(where), data)
    basis: Basis = (
        "what-if" if isinstance(data, dict) and data.get("basis") == "what-if" else "file"
    )
    return Host(hardware=_fill_assumptions(hardware), machine=machine, issues=issues, basis=basis)
