"""The Python API gives the same reports as the CLI's JSON, and the same errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import canirun
from canirun.cli import app
from canirun.report import CheckReport, HardwareReport, ScanReport
from tests.fakes.fake_nvml import FakeGpu, FakeNvml
from tests.test_cli_commands import WORKSTATION

GIB = 2**30
VOLATILE = ("created_at",)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    path = tmp_path / "workstation.json"
    path.write_text(json.dumps(WORKSTATION))
    return path


def _cli_json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.output
    return _stable(json.loads(result.stdout))


def _stable(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k not in VOLATILE}


def test_check_matches_the_cli_json(box: Path) -> None:
    report = canirun.check(
        "llama 3.1 8b", hardware_file=box, ctx=8192, precision=["Q4_K_M"], ram_bandwidth="80GB/s"
    )
    assert isinstance(report, CheckReport)
    cli = _cli_json(
        "check", "llama 3.1 8b", "--hardware", str(box), "--ctx", "8192", "-p", "Q4_K_M",
        "--ram-bandwidth", "80GB/s",
    )  # fmt: skip
    assert _stable(report.model_dump(mode="json")) == cli
    assert report.summary[0].verdict == "gpu"


def test_scan_matches_the_cli_json(box: Path) -> None:
    report = canirun.scan(hardware_file=str(box), ram_bandwidth="off")
    assert isinstance(report, ScanReport)
    cli = _cli_json("scan", "--hardware", str(box), "--ram-bandwidth", "off")
    assert _stable(report.model_dump(mode="json")) == cli


def test_check_gate_is_a_value_not_an_exception(box: Path) -> None:
    met = canirun.check("llama 3.1 8b", hardware_file=box, require="gpu", ram_bandwidth="off")
    unmet = canirun.check("llama 3.1 70b", hardware_file=box, require="gpu", ram_bandwidth="off")
    plain = canirun.check("llama 3.1 8b", hardware_file=box, ram_bandwidth="off")
    assert (met.requirement_met, unmet.requirement_met, plain.requirement_met) == (
        True,
        False,
        None,
    )


def test_several_queries_and_what_if_flags() -> None:
    report = canirun.check(
        ["llama 3.1 8b", "whisper large"], gpu=["RTX 4090"], ram="64GB", ram_bandwidth="off"
    )
    assert {s.model_id for s in report.summary} >= {"llama-3.1-8b"}
    assert report.hardware.gpus[0].memory_total_bytes == 24 * GIB


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: canirun.check("no-such-model-zz", ram_bandwidth="off"), "no model matches"),
        (lambda: canirun.scan(ctx=0, ram_bandwidth="off"), "--ctx: must be at least 1"),
        (lambda: canirun.scan(vram="lots", ram_bandwidth="off"), "--vram"),
        (lambda: canirun.check("llama", require="fast", ram_bandwidth="off"), "--require"),
    ],
)
def test_bad_input_raises_the_cli_message(call, message: str) -> None:
    with pytest.raises(canirun.InputError, match=message):
        call()


def test_probe_reads_this_machine_through_the_seams(fake_nvml) -> None:
    fake_nvml(FakeNvml([FakeGpu(name="NVIDIA A100-SXM4-80GB", total=80 * GIB)]))
    report = canirun.probe()
    assert isinstance(report, HardwareReport)
    assert [g.name for g in report.hardware.gpus] == ["NVIDIA A100-SXM4-80GB"]
    assert report.hardware.memory.total_bytes


def test_probe_reads_a_hardware_file(box: Path) -> None:
    report = canirun.probe(hardware_file=box)
    assert report.hardware.gpus[0].name == "NVIDIA GeForce RTX 4090"


def test_importing_the_package_loads_no_layer() -> None:
    code = "import canirun, sys; print(sorted(m for m in sys.modules if m.startswith('canirun')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['canirun']"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = canirun.nope  # type: ignore[attr-defined]
