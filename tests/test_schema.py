"""The report's JSON Schema: committed, versioned, and every --json output obeys it."""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from canirun.cli import app
from canirun.envelope import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.write_schema import schema_text

SCHEMA_DIR = resources.files("canirun.schema")
COMMITTED = json.loads(SCHEMA_DIR.joinpath("report.schema.json").read_text())
VERSIONS = json.loads(SCHEMA_DIR.joinpath("versions.json").read_text())
VALIDATOR = Draft202012Validator(COMMITTED)
runner = CliRunner()


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_DIR.joinpath("report.schema.json").read_text() == schema_text(), (
        "the report models changed: run python scripts/write_schema.py "
        "(and bump SCHEMA_VERSION if the change is not additive)"
    )


def test_a_schema_change_needs_a_new_version() -> None:
    digest = hashlib.sha256(schema_text().encode()).hexdigest()
    assert VERSIONS.get(SCHEMA_VERSION) == digest, (
        f"schema {SCHEMA_VERSION} was recorded with another digest: bump SCHEMA_VERSION in "
        "src/canirun/envelope.py and run python scripts/write_schema.py"
    )


def test_schema_command_prints_the_committed_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == COMMITTED


@pytest.mark.parametrize(
    "args",
    [
        ["hardware", "--json"],
        ["scan", "--json", "--ram-bandwidth", "off"],
        ["check", "llama", "whisper", "--json", "--ram-bandwidth", "off"],
        ["check", "llama3:8b", "--json", "--gpu", "2x A100 80GB", "--require", "gpu"],
    ],
)
def test_every_json_output_validates_against_the_schema(args: list[str], fake_nvml) -> None:
    from tests.fakes.fake_nvml import FakeGpu, FakeNvml

    fake_nvml(FakeNvml([FakeGpu()]))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    errors = sorted(VALIDATOR.iter_errors(json.loads(result.stdout)), key=str)
    assert not errors, errors[0].message
