"""`canirun hardware` and the shared CLI behaviour, through typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun import __version__
from canirun.cli import app
from canirun.report import Report
from tests.fakes.fake_nvml import FakeGpu, FakeNvml, a100_mig

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"canirun {__version__}"


def test_hardware_json_validates_against_the_report_model(fake_nvml) -> None:
    fake_nvml(FakeNvml([FakeGpu(), a100_mig()]))
    result = run("hardware", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    report = Report.model_validate(data)
    assert report.kind == "hardware"
    assert report.model_dump(mode="json") == data  # the fast path and the model agree
    assert [g.name for g in report.hardware.gpus] == [
        "NVIDIA GeForce RTX 4090",
        "NVIDIA A100-SXM4-80GB",
    ]


def test_hardware_text_summary(fake_nvml) -> None:
    fake_nvml(FakeNvml([FakeGpu()]))
    result = run("hardware")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("Machine")
    assert "GPU 0    NVIDIA GeForce RTX 4090 · 24.0 GiB (22.4 GiB free) · compute 8.9" in out
    assert "1008 GB/s" in out
    assert "\x1b[" not in out  # plain text when not a terminal


def test_hardware_without_gpus_says_why(fake_nvml) -> None:
    fake_nvml(FakeNvml(init_error=9))
    result = run("hardware")
    assert "GPUs     none found" in result.stdout
    assert "the NVIDIA driver is installed but not loaded" in result.stdout


def test_output_file_is_written_and_json_is_complete(tmp_path: Path, fake_nvml) -> None:
    fake_nvml(FakeNvml())
    target = tmp_path / "report.json"
    result = run("hardware", "--output", str(target))
    assert result.exit_code == 0
    Report.model_validate_json(target.read_text())
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_output_into_a_missing_directory_creates_it(tmp_path: Path) -> None:
    target = tmp_path / "site" / "nightly" / "r.json"
    assert run("hardware", "--output", str(target)).exit_code == 0
    Report.model_validate_json(target.read_text())


def test_output_under_a_file_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    result = run("hardware", "--output", str(tmp_path / "file" / "r.json"))
    assert result.exit_code == 2
    assert "--output" in result.stderr
    assert (tmp_path / "file").read_text() == "mine"


HAND_WRITTEN = {
    "cpu": {"logical_cores": 16},
    "memory": {"total_bytes": 64 * 2**30},
    "gpus": [
        {"vendor": "nvidia", "name": "NVIDIA GeForce RTX 4090", "memory_total_bytes": 24 * 2**30}
    ],
}


def test_minimal_hand_written_hardware_file_loads_with_assumptions(tmp_path: Path) -> None:
    path = tmp_path / "what-if.json"
    path.write_text(json.dumps(HAND_WRITTEN))
    result = run("hardware", "--json", "--hardware", str(path))
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json(result.stdout)
    hw = report.hardware
    assert hw.memory.available_bytes == 64 * 2**30
    assert hw.gpus[0].memory_free_bytes == 24 * 2**30
    assert set(hw.assumed) == {
        "memory.available_bytes",
        "cpu.usable_cores",
        "gpus[0].memory_free_bytes",
    }
    assert hw.cpu.flags is None  # not stated: unknown, not "none"


def test_toml_hardware_file(tmp_path: Path) -> None:
    path = tmp_path / "box.toml"
    path.write_text(
        "[cpu]\nlogical_cores = 8\n[memory]\ntotal_bytes = 34359738368\n"
        '[[gpus]]\nvendor = "nvidia"\nname = "RTX 3060"\nmemory_total_bytes = 12884901888\n'
    )
    result = run("hardware", "--hardware", str(path))
    assert result.exit_code == 0, result.output
    assert "RTX 3060" in result.stdout


def test_a_report_from_another_machine_is_re_read(tmp_path: Path, fake_nvml) -> None:
    fake_nvml(FakeNvml([FakeGpu()]))
    first = run("hardware", "--json").stdout
    path = tmp_path / "other.json"
    path.write_text(first)
    result = run("hardware", "--json", "--hardware", str(path))
    assert result.exit_code == 0
    again = json.loads(result.stdout)
    assert again["hardware"]["gpus"] == json.loads(first)["hardware"]["gpus"]
    assert again["machine"] == json.loads(first)["machine"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"memory": {"total_bytes": "lots"}}', "memory.total_bytes"),
        ('{"memory": {"total_bytes": -5}}', "memory.total_bytes: must not be negative"),
        ('{"memry": {}}', "memry"),
        ('{"gpus": [{"name": "x"}]}', "gpus.0.vendor"),
        ("\xff\xfe garbage", "not valid JSON"),
    ],
)
def test_bad_hardware_files_are_one_line_and_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode("latin-1"))
    result = run("hardware", "--hardware", str(path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert str(path) in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_hardware_file(tmp_path: Path) -> None:
    result = run("scan", "--hardware", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "cannot read it" in result.stderr


def test_models_dir_and_hardware_file_conflict(tmp_path: Path) -> None:
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(HAND_WRITTEN))
    result = run("hardware", "--hardware", str(path), "--models-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "--models-dir" in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = run("hardware", "--bogus")
    assert result.exit_code == 2
    assert "No such option" in result.output


def _canirun(*args: str) -> list[str]:
    return [sys.executable, "-m", "canirun", *args]


CLOSED_READER = """
import os, sys
read_end, write_end = os.pipe()
os.close(read_end)  # the reader is gone before canirun writes a byte, like `| head` that exited
os.dup2(write_end, 1)
from canirun.cli import main
sys.exit(main(["hardware", "--json"]))
"""


def test_closed_pipe_is_quiet() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CLOSED_READER], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_python_dash_m_runs() -> None:
    proc = subprocess.run(_canirun("--version"), capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"canirun {__version__}"
