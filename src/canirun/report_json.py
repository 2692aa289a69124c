"""Scan and check reports written as JSON without pydantic (issue 15: pydantic's import and
the report models' classes are about a fifth of a `check`).

The JSON must be byte for byte what the validated report model writes
(``model_dump_json(indent=2)``), so the field order, defaults and nested report models of
each report class come from ``schema/report-layout.json``, a table generated from the
models by ``scripts/compile_catalog.py`` (``tests/test_report_json.py`` fails when it is
stale). The records a report embeds (results, summaries, workloads: dataclasses) are
written by msgspec field by field, as pydantic writes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

R = TypeVar("R", bound="BaseModel")

LAYOUT_FILE = Path(__file__).parent / "schema" / "report-layout.json"

# msgspec writes a float of 1e16 or more as `1e16`, pydantic as `1e+16`. In compact JSON
# every number is followed by `,`, `]` or `}`, so `e`, digits and one of those find every
# number with a positive exponent (a string holding such text matches too: that costs time,
# never correctness); such a report is written by pydantic_core instead. Searched before
# indenting: the compact text is a quarter shorter. msgspec writes an exponent only from
# 1e16 up, so a positive one is 16 to 308 and its first digit is 1, 2 or 3: the search
# stops at fewer of a report's 200,000 e's (~2.7 ms for a scan's 3 MB). A substring test
# first (`b"e1" in text`) saves nothing: the commit hashes in the sources' URLs hold them.
_POSITIVE_EXPONENT = re.compile(rb"e[1-3][0-9]*[,\]}]")


def has_positive_exponent(compact: bytes) -> bool:
    """Does the compact JSON hold a number with a positive exponent (or a string that
    reads like one)?"""
    return _POSITIVE_EXPONENT.search(compact) is not None


@cache
def layout() -> dict[str, list[tuple[str, bool, Any, str | None]]]:
    """Each report model's fields in declaration order: (name, has a default, the default,
    the report model the field holds or None)."""
    import msgspec  # already loaded by the estimator; the json module would be one more import

    raw = msgspec.json.decode(LAYOUT_FILE.read_bytes())
    return {name: [tuple(field) for field in fields] for name, fields in raw.items()}


def plain(model: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as the report model ``model`` writes it: every field in declaration order,
    defaults filled in, nested report models the same way (records and plain values are
    left as they are). Unknown keys are refused, as validation would."""
    fields = layout()[model]
    unknown = set(value) - {f[0] for f in fields}
    if unknown:
        raise ValueError(f"{model}: unknown fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name, has_default, default, inner in fields:
        if name in value:
            item = value[name]
        elif has_default:
            item = default
        else:
            raise ValueError(f"{model}: the field {name!r} is missing")
        if inner is not None and item is not None:
            if isinstance(item, (list, tuple)):
                item = [plain(inner, _mapping(x)) for x in item]
            else:
                item = plain(inner, _mapping(item))
        out[name] = item
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    """A nested report model's data: a mapping, or a model a caller built (validated)."""
    if isinstance(value, Mapping):
        return value
    return {name: getattr(value, name) for name in type(value).model_fields}


def dumps(model: str, data: Mapping[str, Any]) -> str:
    """The report's JSON, indented by 2, through jsonsafe's control escapes."""
    return dump_bytes(model, data).decode()


def dump_bytes(model: str, data: Mapping[str, Any]) -> bytes:
    """``dumps`` as UTF-8, for writing as it is (a scan's JSON is megabytes: decoding it
    and encoding it again to write it costs a few milliseconds, issue 15)."""
    import msgspec

    from canirun.jsonsafe import escape_control_bytes

    tree = plain(model, data)
    compact = msgspec.json.encode(tree)
    if has_positive_exponent(compact):
        import pydantic_core

        return escape_control_bytes(pydantic_core.to_json(tree, indent=2, inf_nan_mode="null"))
    return escape_control_bytes(msgspec.json.format(compact, indent=2))


class Pending(Generic[R]):
    """A report's data and the name of its model class, for the command line. The JSON is
    written from the data (``dumps``) without importing pydantic; the model is validated
    when read (text, Markdown and JUnit render from it, the Python API returns it)."""

    def __init__(self, model: str, data: Mapping[str, Any]) -> None:
        self.model_name, self.data = model, data

    @cached_property
    def model(self) -> R:
        from canirun import report

        cls: type[R] = getattr(report, self.model_name)
        return cls.model_validate(self.data)

    @property
    def requirement_met(self) -> bool | None:
        met = self.data.get("requirement_met")
        return met if isinstance(met, bool) else None

    def json(self) -> str:
        """``model.model_dump_json(indent=2)``, through jsonsafe's control escapes."""
        return dumps(self.model_name, self.data)

    def json_bytes(self) -> bytes:
        """``json()`` as UTF-8."""
        return dump_bytes(self.model_name, self.data)
