"""What canirun says, as pydantic models: the contract of every ``--json`` output.

The hardware part reuses the probe's frozen dataclasses; pydantic validates
them (unknown keys are errors) and generates the JSON Schema from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from canirun.envelope import SCHEMA_VERSION
from canirun.estimate.frameworks import FrameworkStatus
from canirun.estimate.results import Result, Summary, Workload
from canirun.hardware.model import Hardware, Machine, ProbeIssue


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Tool(_Strict):
    name: Literal["canirun"] = "canirun"
    version: str


class Report(_Strict):
    """The envelope every report shares; ``kind`` says which command wrote it."""

    schema_version: str = Field(SCHEMA_VERSION, pattern=r"^\d+\.\d+$")
    kind: Literal["hardware", "scan", "check", "local"]
    tool: Tool
    created_at: str = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", description="UTC, ISO-8601"
    )
    basis: Literal["probe", "file", "what-if"] = Field(
        "probe",
        description="probe: this machine as probed; file: a machine read from --hardware; "
        "what-if: hardware changed by --gpu/--vram/--ram (no real machine)",
    )
    partial: bool = Field(
        False,
        description="true when only part of the catalog was rated (check, --precision, "
        "--framework): not the whole picture of the machine",
    )
    machine: Machine
    hardware: Hardware
    probe_issues: tuple[ProbeIssue, ...] = ()


class ClusterNodeInfo(_Strict):
    name: str
    gpus: int
    gpu: str | None = None
    gpu_memory_bytes: int | None = None


class ClusterInfo(_Strict):
    """The cluster multi-node layouts were planned on, and what they assume of it."""

    source: Literal["what-if", "reports", "ray"]
    nodes: tuple[ClusterNodeInfo, ...]
    notes: tuple[str, ...] = ()


class Assumptions(_Strict):
    """What every estimate in the report assumed; nothing is left implicit."""

    workload: Workload
    precisions: tuple[str, ...] = Field(description="precisions evaluated (per kind where empty)")
    headroom: str
    ram_bandwidth_bytes_per_s: int | None = None
    ram_bandwidth_source: str | None = None
    frameworks_installed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cluster: ClusterInfo | None = None


class HardwareReport(Report):
    """`canirun hardware --json`."""

    kind: Literal["hardware"] = "hardware"


class ScanReport(Report):
    """`canirun scan --json`: the whole catalog rated for this machine."""

    kind: Literal["scan"] = "scan"
    assumptions: Assumptions
    frameworks: tuple[FrameworkStatus, ...] = ()
    summary: tuple[Summary, ...] = ()
    requirement: str | None = Field(None, description="the --require/--min-tps gate, if any")
    requirement_met: bool | None = None
    results: tuple[Result, ...] = ()


class MatchInfo(_Strict):
    query: str
    model_id: str
    how: str = Field(
        description="ollama tag, hugging face id, exact name, model name, family or words; "
        "file (a path) or hub (--online)"
    )
    precision: str | None = Field(
        None, description="the precision the name selected (an Ollama or GGUF quant), if any"
    )
    note: str | None = Field(
        None, description="how the name was read: the tag's date, a retargeted tag, a suffix"
    )


class CheckReport(ScanReport):
    """`canirun check`: the scan format, limited to the matched variants."""

    kind: Literal["check"] = "check"  # type: ignore[assignment]

    query: tuple[str, ...]
    matches: tuple[MatchInfo, ...] = ()


def layout_table() -> dict[str, list[list[Any]]]:
    """The JSON writer's table (``canirun.report_json``): for the scan and check reports,
    the frameworks listing and every report model inside them, each field in declaration
    order as [name, has a default, the default as JSON, the report model it holds or null]."""
    from pydantic_core import PydanticUndefined, to_jsonable_python

    from canirun.report_more import FrameworkListing

    table: dict[str, list[list[Any]]] = {}
    todo: list[type[BaseModel]] = [ScanReport, CheckReport, FrameworkListing]
    while todo:
        cls = todo.pop(0)
        if cls.__name__ in table:
            continue
        rows = []
        for name, info in cls.model_fields.items():
            default = info.get_default(call_default_factory=True)
            inner = _model_in(info.annotation)
            if inner is not None:
                todo.append(inner)
            has = default is not PydanticUndefined
            rows.append(
                [name, has, to_jsonable_python(default) if has else None, inner and inner.__name__]
            )
        table[cls.__name__] = rows
    return table


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The report model a field holds (``X``, ``tuple[X, ...]``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# The models no scan or check writes live in canirun.report_more, loaded on first use
# (PEP 562): their classes cost ~3 ms a start (issue 15). Type checkers see them here.
_LATER = frozenset(
    (
        "LocalFound",
        "LocalSkip",
        "LocalReport",
        "CatalogListing",
        "FrameworkEntry",
        "FrameworkListing",
        "GpuListing",
        "FleetMachine",
        "FleetCell",
        "FleetRow",
        "FleetSkip",
        "FleetReport",
    )
)

if TYPE_CHECKING:  # re-exported: `from canirun.report import LocalReport` keeps working
    from canirun.report_more import (
        CatalogListing,
        FleetCell,
        FleetMachine,
        FleetReport,
        FleetRow,
        FleetSkip,
        FrameworkEntry,
        FrameworkListing,
        GpuListing,
        LocalFound,
        LocalReport,
        LocalSkip,
    )


__all__ = [
    "SCHEMA_ID",
    "Assumptions",
    "CatalogListing",
    "CheckReport",
    "ClusterInfo",
    "ClusterNodeInfo",
    "FleetCell",
    "FleetMachine",
    "FleetReport",
    "FleetRow",
    "FleetSkip",
    "FrameworkEntry",
    "FrameworkListing",
    "GpuListing",
    "HardwareReport",
    "LocalFound",
    "LocalReport",
    "LocalSkip",
    "MatchInfo",
    "Report",
    "ScanReport",
    "Tool",
    "report_schema",
]


def __getattr__(name: str) -> Any:
    if name in _LATER:
        from canirun import report_more

        return getattr(report_more, name)
    if name == "AnyReport":
        return _any_report()
    raise AttributeError(f"module 'canirun.report' has no attribute {name!r}")


def _any_report() -> Any:
    """Every report, told apart by ``kind`` (the JSON Schema's top level)."""
    from canirun.report_more import (
        CatalogListing,
        FleetReport,
        FrameworkListing,
        GpuListing,
        LocalReport,
    )

    return Annotated[
        HardwareReport
        | ScanReport
        | CheckReport
        | LocalReport
        | FleetReport
        | CatalogListing
        | FrameworkListing
        | GpuListing,
        Field(discriminator="kind"),
    ]


SCHEMA_ID = "https://github.com/canirun/canirun/schema/report.schema.json"


def report_schema() -> dict[str, Any]:
    """The JSON Schema of every report canirun writes: hardware, scan, check, local,
    fleet, and
    the listings of `list --json`, `frameworks --json` and `gpus --json`."""
    from pydantic import TypeAdapter

    # Serialization mode: the schema of what canirun writes (derived fields included).
    schema = TypeAdapter(_any_report()).json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"canirun report, schema version {SCHEMA_VERSION}",
        **schema,
    }
