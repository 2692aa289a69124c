"""The report models no scan or check writes: `local`'s, the listings of `list --json`,
`frameworks --json` and `gpus --json`, and `fleet`'s. ``canirun.report`` exports them
too (loaded on first use): a scan's start need not build their classes (issue 15)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from canirun.catalog import constraints
from canirun.catalog.schema import Framework, Model
from canirun.catalog.schema import Gpu as GpuSpec
from canirun.envelope import SCHEMA_VERSION
from canirun.estimate.frameworks import FrameworkStatus
from canirun.hardware.model import Hardware
from canirun.report import ScanReport, Tool, _Strict

# The listings embed catalog records, whose annotations name the schema's constraints.
constraints.install()


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
