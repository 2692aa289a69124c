"""What canirun says, as pydantic models: the contract of every ``--json`` output.

The hardware part reuses the probe's frozen dataclasses; pydantic validates
them (unknown keys are errors) and generates the JSON Schema from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from canirun.catalog.schema import Framework, Model
from canirun.catalog.schema import Gpu as GpuSpec
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


class LocalFound(_Strict):
    model_id: str = Field(description="a summary[].model_id")
    store: str = Field(description="hf-cache, ollama, lm-studio, llama.cpp or models-dir")
    path: str
    format: str
    architecture: str | None = None
    precision: str
    weights_bytes: int = Field(description="exact: the sum of the stored tensors")
    files: int = Field(description="files the weights were summed from")


class LocalSkip(_Strict):
    path: str
    reason: str


class LocalReport(ScanReport):
    """`canirun local`: the models already on this machine, each read and rated."""

    kind: Literal["local"] = "local"  # type: ignore[assignment]

    searched: tuple[str, ...] = Field(description="store: folder, for every folder looked in")
    found: tuple[LocalFound, ...] = ()
    skipped: tuple[LocalSkip, ...] = ()
    seconds: float = Field(description="time spent finding and reading the models")


class CatalogListing(_Strict):
    """`canirun list --json`: catalog entries with every figure and its source."""

    schema_version: str = SCHEMA_VERSION
    kind: Literal["catalog"] = "catalog"
    tool: Tool
    models: tuple[Model, ...]


class FrameworkEntry(_Strict):
    framework: Framework
    status: FrameworkStatus


class FrameworkListing(_Strict):
    """`canirun frameworks --json`: each framework's facts and whether it runs here."""

    schema_version: str = SCHEMA_VERSION
    kind: Literal["frameworks"] = "frameworks"
    tool: Tool
    hardware: Hardware
    frameworks: tuple[FrameworkEntry, ...]


class GpuListing(_Strict):
    """`canirun gpus --json`: the GPU table behind --gpu, with sources."""

    schema_version: str = SCHEMA_VERSION
    kind: Literal["gpus"] = "gpus"
    tool: Tool
    gpus: tuple[GpuSpec, ...]


class FleetMachine(_Strict):
    key: str = Field(description="hostname#hashed machine id: what identifies a machine")
    hostname: str
    machine_id: str | None
    created_at: str
    file: str
    schema_version: str
    cpu: str | None
    ram_bytes: int | None
    gpus: tuple[str, ...]
    partial: bool = Field(
        False, description="true when only partial reports (checks) filled this column"
    )


class FleetCell(_Strict):
    machine: str = Field(description="a machines[].key")
    verdict: str
    precision: str | None = None
    framework: str | None = None
    tokens_per_second: float | None = None


class FleetRow(_Strict):
    model_id: str
    name: str
    category: str
    cells: tuple[FleetCell, ...]


class FleetSkip(_Strict):
    file: str
    reason: str


class FleetReport(_Strict):
    """`canirun fleet --format json`: which model runs where, across many machines."""

    schema_version: str = Field(SCHEMA_VERSION, pattern=r"^\d+\.\d+$")
    kind: Literal["fleet"] = "fleet"
    tool: Tool
    created_at: str
    machines: tuple[FleetMachine, ...]
    rows: tuple[FleetRow, ...]
    skipped: tuple[FleetSkip, ...] = ()
    superseded: int = Field(
        0, description="older reports replaced by a newer one of the same machine"
    )
    partial_merged: int = Field(
        0, description="partial reports (checks) merged into a machine's column"
    )


AnyReport = Annotated[
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
    schema = TypeAdapter(AnyReport).json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"canirun report, schema version {SCHEMA_VERSION}",
        **schema,
    }
