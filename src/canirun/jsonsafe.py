"""JSON that is always valid: no NaN or Infinity read from a file, none ever written.

Python's ``json`` accepts and writes the bare tokens ``NaN``, ``Infinity`` and
``-Infinity`` (and turns ``1e400`` into infinity), which no other JSON reader
accepts. canirun refuses them on input, where a number is required, and writes
an unknown (non-finite) figure as ``null``. C1 control characters and DEL, which
``json`` leaves raw with ``ensure_ascii=False`` and some terminals obey, are
written as ``\\u`` escapes: the same JSON value, safe to print.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any


@cache
def _raw_controls() -> re.Pattern[str]:
    # Compiled for the first text that is not plain ASCII, not at every start (issue 15).
    return re.compile("[\x7f-\x9f\u2028\u2029]")


@cache
def _raw_control_bytes() -> re.Pattern[bytes]:
    # The same characters in UTF-8 (DEL, U+0080-U+009F, U+2028, U+2029): in valid UTF-8
    # these byte sequences are those characters and nothing else.
    return re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def loads(data: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers too large for a float."""
    import json  # imported where used: a scan's JSON is written by msgspec, without it

    return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)


def toml_loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` that refuses nan and inf (TOML allows them; canirun does not)."""
    import tomllib

    return tomllib.loads(text, parse_float=_finite_float)


def finite(value: Any) -> Any:
    """The value with every non-finite float replaced by None (unknown), deeply."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON text: finite numbers only, raw control characters escaped."""
    import json

    text = json.dumps(finite(value), allow_nan=False, ensure_ascii=False, **options)
    return escape_controls(text)


def dumps_model(model: Any, **options: Any) -> str:
    """``dumps(model.model_dump(mode="json"))`` for a pydantic model, by pydantic's own
    (Rust) serialiser: the same bytes, several times faster for a full scan report.

    pydantic writes non-finite floats as null by default, as ``finite`` does; the raw
    controls are escaped the same way (tests/test_golden.py compares the bytes).
    """
    text = str(model.model_dump_json(**options))
    return escape_controls(text)


def escape_controls(text: str) -> str:
    # A report is megabytes of ASCII: one C scan (isascii) instead of a regex pass.
    if text.isascii() and "\x7f" not in text:
        return text
    return _raw_controls().sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_control_bytes(data: bytes) -> bytes:
    """``escape_controls`` for UTF-8 JSON: the same escapes, written as bytes."""
    if data.isascii() and b"\x7f" not in data:
        return data
    return _raw_control_bytes().sub(lambda m: f"\\u{ord(m.group().decode()):04x}".encode(), data)
