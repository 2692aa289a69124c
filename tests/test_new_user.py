"""Defects a new user found (issue 10, item 9): what-if and partial reports in a
fleet, the documented CI workflow, JUnit and --min-tps, --explain adding up, the
schema of every JSON output, a broken user catalog file, and small wording."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args", [["list", "--json"], ["gpus", "--json"], ["frameworks", "--json"]])
def test_listings_validate_against_the_schema(args: list[str]) -> None:
    from jsonschema import Draft202012Validator

    from canirun.report import report_schema

    out = runner.invoke(app, [*args, "--ram", "64GB"] if args[0] == "frameworks" else args)
    assert out.exit_code == 0, out.output
    Draft202012Validator(report_schema()).validate(json.loads(out.stdout))


# -- the documented GitHub Actions workflow, run end to end ---------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / "docs/examples/github-actions.yml"
SRC = Path(__file__).resolve().parent.parent / "src"


def _commands(job: dict, runner_name: str | None) -> list[str]:  # type: ignore[type-arg]
    out = []
    for step in job["steps"]:
        run = step.get("run")
        if not run or "pip install" in run:
            continue
        if runner_name is not None:
            run = run.replace("${{ matrix.runner }}", runner_name)
        out.append(" ".join(run.split()))
    return out


def _upload_paths(job: dict, runner_name: str) -> list[str]:  # type: ignore[type-arg]
    for step in job["steps"]:
        if str(step.get("uses", "")).startswith("actions/upload-artifact"):
            paths = step["with"]["path"].replace("${{ matrix.runner }}", runner_name)
            return [p.strip() for p in paths.splitlines() if p.strip()]
    raise AssertionError("the scan job uploads no artifact")


def test_the_documented_workflow_works_end_to_end(tmp_path: Path) -> None:
    """Every `run:` of docs/examples/github-actions.yml, with artifacts moved between jobs
    as actions/download-artifact does (one folder per artifact)."""
    import os
    import shlex
    import subprocess
    import sys

    import yaml
    from junitparser import JUnitXml

    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    canirun = f"{shlex.quote(sys.executable)} -m canirun"
    env = {**os.environ, "PYTHONPATH": str(SRC), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")

    def sh(command: str, cwd: Path) -> None:
        command = command.replace(".venv/bin/canirun", canirun)
        done = subprocess.run(
            ["bash", "-c", command],
            check=False,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (command, done.stderr)

    fleet_dir = tmp_path / "fleet"
    reports = fleet_dir / "reports"
    runners = jobs["scan"]["strategy"]["matrix"]["runner"][:2]
    for name in runners:
        work = tmp_path / name
        work.mkdir()
        for command in _commands(jobs["scan"], name):
            sh(command, work)
        artifact = reports / f"canirun-{name}"
        artifact.mkdir(parents=True)
        for rel in _upload_paths(jobs["scan"], name):
            (artifact / rel).write_bytes((work / rel).read_bytes())
        report = json.loads((artifact / f"canirun-{name}.json").read_text())
        assert report["kind"] == "scan"
        junit = JUnitXml.fromfile(str(next(artifact.glob("*.xml"))))
        assert junit.tests == len(report["summary"])
    for command in _commands(jobs["fleet"], None):
        sh(command, fleet_dir)
    page = (fleet_dir / "site/index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "0 files skipped" in page  # the JUnit files are not mistaken for reports
    summary = (tmp_path / "summary").read_text()
    assert "## canirun fleet" in summary


# -- JUnit honours --min-tps ----------------------------------------------------------------


def test_junit_follows_min_tps_and_the_exit_code(tmp_path: Path) -> None:
    from junitparser import JUnitXml

    args = ["check", "llama3:8b", "--gpu", "RTX 4090", "--format", "junit"]
    fast = runner.invoke(app, [*args, "--min-tps", "1"])
    slow = runner.invoke(app, [*args, "--min-tps", "100000"])
    assert fast.exit_code == 0
    assert slow.exit_code == 1
    (tmp_path / "fast.xml").write_text(fast.stdout)
    (tmp_path / "slow.xml").write_text(slow.stdout)
    assert JUnitXml.fromfile(str(tmp_path / "fast.xml")).failures == 0
    assert JUnitXml.fromfile(str(tmp_path / "slow.xml")).failures == 1
    assert "100000 tokens/s" in slow.stdout


# -- --explain adds up ----------------------------------------------------------------------

_AMOUNT = re.compile(r"^[^:]*: ([\d.,]+) (B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b")
_UNIT = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_UNIT |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _adds_up(result: dict) -> None:  # type: ignore[type-arg]
    memory = result["memory"]
    total, slack = 0.0, 0.0
    for line in memory["breakdown"]:
        found = _AMOUNT.match(line)
        if found is None or line.startswith("besides"):
            continue
        times = re.search(r", x (\d+) GPUs$", line)
        n = int(times.group(1)) if times else 1
        value, unit = float(found.group(1).replace(",", "")), _UNIT[found.group(2)]
        total += value * unit * n
        slack += 0.05 * unit * n + 1  # one printed decimal
    assert memory["total_bytes"] == (
        memory["weights_bytes"] + (memory["kv_cache_bytes"] or 0) + memory["overhead_bytes"]
    )
    assert abs(total - memory["total_bytes"]) <= slack, (result["model_id"], memory["breakdown"])
    text = " ".join(memory["breakdown"])
    if result["verdict"] == "cpu":
        assert "CUDA" not in text, memory["breakdown"]
        assert "on the GPU" not in text, memory["breakdown"]
    if result["verdict"] in ("gpu", "multi-gpu"):
        assert "VLLM_CPU_KVCACHE_SPACE" not in text
        assert "on the CPU" not in text


@pytest.mark.parametrize(
    "machine",
    [
        ["--ram", "64GB", "--ram-bandwidth", "50GB/s"],
        ["--gpu", "RTX 4090", "--ram", "128GB", "--ram-bandwidth", "50GB/s"],
        ["--gpu", "2x A100 80GB", "--ram", "512GB"],
        ["--gpu", "H100", "--ram", "16GB"],
        ["--vram", "2GB", "--ram", "8GB"],
    ],
)
def test_every_explain_line_adds_up_to_the_total(machine: list[str]) -> None:
    out = runner.invoke(app, ["scan", "--json", *machine])
    assert out.exit_code == 0, out.output
    results = [r for r in json.loads(out.stdout)["results"] if r["memory"]]
    assert len(results) > 100
    for r in results:
        _adds_up(r)


def test_explain_names_both_bandwidths_for_gpu_plus_ram() -> None:
    out = runner.invoke(
        app,
        [
            *("check", "llama3:70b", "-p", "Q4_K_M", "--explain", "--gpu", "RTX 4090"),
            *("--ram", "128GB", "--ram-bandwidth", "80GB/s"),
        ],
    )
    assert "GPU+RAM" in out.stdout
    assert "? x" not in out.stdout
    assert "from GPU memory at 1008 GB/s" in out.stdout
    assert "from RAM at 80 GB/s" in out.stdout


# -- fleet: what-if and partial reports -----------------------------------------------------


def _scan(tmp_path: Path, name: str, *args: str) -> Path:
    out = tmp_path / name
    done = runner.invoke(app, [*args, "--output", str(out), "--format", "json"])
    assert done.exit_code in (0, 1), done.output
    return out


@pytest.fixture
def real_machine(tmp_path: Path) -> Path:
    hw = tmp_path / "hw.json"
    hw.write_text(
        json.dumps(
            {
                "cpu": {"logical_cores": 8, "arch": "x86_64"},
                "memory": {"total_bytes": 64 * 2**30},
                "gpus": [
                    {
                        "vendor": "nvidia",
                        "name": "NVIDIA GeForce RTX 4090",
                        "memory_total_bytes": 24 * 2**30,
                    }
                ],
                "os": {"system": "Linux", "machine": "x86_64"},
            }
        )
    )
    report = json.loads(runner.invoke(app, ["hardware", "--json", "--hardware", str(hw)]).stdout)
    report["machine"] = {"hostname": "lab-01", "id": "abc"}
    hw.write_text(json.dumps(report))
    return hw


def test_reports_say_what_they_are(real_machine: Path, tmp_path: Path) -> None:
    scan = json.loads(
        _scan(tmp_path, "s.json", "scan", "--hardware", str(real_machine)).read_text()
    )
    assert (scan["basis"], scan["partial"]) == ("file", False)
    what = json.loads(
        _scan(tmp_path, "w.json", "scan", "--gpu", "H100", "--ram", "512GB").read_text()
    )
    assert (what["basis"], what["partial"]) == ("what-if", False)
    check = json.loads(_scan(tmp_path, "c.json", "check", "llama3:8b").read_text())
    assert check["partial"] is True
    limited = json.loads(_scan(tmp_path, "l.json", "scan", "-f", "vllm").read_text())
    assert limited["partial"] is True
    again = json.loads(
        _scan(tmp_path, "again.json", "scan", "--hardware", str(tmp_path / "w.json")).read_text()
    )
    assert again["basis"] == "what-if"  # a what-if read back is still a what-if


def test_fleet_skips_what_ifs_and_a_check_does_not_empty_a_scan(
    real_machine: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    _scan(reports, "1-scan.json", "scan", "--hardware", str(real_machine))
    _scan(
        reports,
        "2-check.json",
        "check",
        "llama3:8b",
        "--hardware",
        str(real_machine),
        "--ctx",
        "8192",
    )
    _scan(reports, "3-whatif.json", "scan", "--hardware", str(real_machine), "--gpu", "H100")
    # Make the check newer than the scan whatever the clock's resolution.
    check = json.loads((reports / "2-check.json").read_text())
    check["created_at"] = "2099-01-01T00:00:00Z"
    (reports / "2-check.json").write_text(json.dumps(check))
    out = runner.invoke(app, ["fleet", str(reports), "--format", "json"])
    assert out.exit_code == 0, out.output
    fleet = json.loads(out.stdout)
    assert len(fleet["machines"]) == 1
    assert fleet["partial_merged"] == 1
    assert [s["file"].endswith("3-whatif.json") for s in fleet["skipped"]] == [True]
    assert "what-if" in fleet["skipped"][0]["reason"]
    assert "what-if" in out.stderr
    filled = [row for row in fleet["rows"] if row["cells"]]
    assert len(filled) > 100  # the scan's whole column is still there
    md = runner.invoke(app, ["fleet", str(reports)]).stdout
    assert "1 partial reports (checks) merged in" in md


# -- a broken file in catalog.d -------------------------------------------------------------


def test_one_broken_user_catalog_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from canirun.catalog.loader import user_catalog_dir

    folder = user_catalog_dir()
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text("[[model]\nid = ")
    (folder / "clash.toml").write_text((SRC / "canirun/catalog/data/gpus.toml").read_text())
    out = runner.invoke(app, ["list"])
    assert out.exit_code == 0, out.output
    assert "broken.toml" in out.stderr
    assert "skipped" in out.stderr
    assert "clash.toml" in out.stderr
    assert out.stderr.count("canirun: warning:") == 2
    named = runner.invoke(app, ["list", "--catalog", str(folder / "broken.toml")])
    assert named.exit_code == 2  # named by the user: an error
    assert "broken.toml" in named.stderr


# -- small wording ---------------------------------------------------------------------------


def test_one_more_problem_is_singular(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    # Two problems: a size that is not one, and no source.
    bad.write_text(
        '[[gpu]]\nid = "x"\nname = "x"\nvendor = "nvidia"\nmemory = "big"\nbandwidth = "1 TB/s"\n'
    )
    out = runner.invoke(app, ["gpus", "--catalog", str(bad)])
    assert out.exit_code == 2
    assert out.stderr.rstrip().endswith("(and 1 more problem)"), out.stderr


@pytest.mark.parametrize("command", ["hardware", "fleet"])
def test_help_mentions_no_format_the_command_lacks(command: str) -> None:
    text = runner.invoke(app, [command, "--help"]).stdout
    if command == "hardware":
        assert "--format" not in text
    else:
        assert "JSON when text" not in text


def test_list_local_help_says_what_it_filters() -> None:
    text = " ".join(runner.invoke(app, ["list", "--help"]).stdout.split())
    assert "can be run here" not in text
    assert "downloaded" in text


def test_gpus_use_one_unit_per_column() -> None:
    text = runner.invoke(app, ["gpus"]).stdout
    assert "TB/s" not in text.split("\n", 1)[1].rsplit("\n", 2)[0]
    rows = text.splitlines()[1:-1]
    assert all(" GB/s" in r and " GiB" in r for r in rows)


def test_long_names_are_cut_with_an_ellipsis() -> None:
    text = runner.invoke(app, ["list"]).stdout + runner.invoke(app, ["gpus"]).stdout
    assert "…" in text


def test_what_ifs_without_a_file_do_not_blame_a_file() -> None:
    out = runner.invoke(app, ["hardware", "--help"])  # sanity: command exists
    assert out.exit_code == 0
    from canirun.catalog import load_catalog
    from canirun.hardware.model import Hardware, Host
    from canirun.output.hardware_text import render_hardware
    from canirun.whatif import WhatIf, apply

    host = apply(Host(Hardware()), WhatIf(gpus=("H100",), ram=2**36), load_catalog().gpus)
    text = render_hardware(host)
    assert "not stated in the file" not in text
    assert "(from --gpu)" in text


def test_a_speed_gate_on_this_machine_gives_the_same_answer_every_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14: `--min-tps` exited 0 1 1 1 1 0 0 0 over 8 runs as the copy test read the load
    of the moment. The first run's figure is kept for this machine, so the gate and the
    speeds stay put; `--ram-bandwidth measure` measures again."""
    from canirun.hardware import bandwidth

    figures = iter(range(5 * 10**9, 100 * 10**9, 7 * 10**9))  # a different reading each test
    monkeypatch.setattr(
        bandwidth,
        "measure_ram_bandwidth",
        lambda budget, cores: bandwidth.Measurement(next(figures), 1, budget),
    )
    runner = CliRunner()
    args = ["check", "llama 3.1 8b", "-p", "Q4_K_M", "--json"]
    seen = []
    for _ in range(4):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        seen.append(json.loads(result.output)["assumptions"]["ram_bandwidth_bytes_per_s"])
    assert seen == [5 * 10**9] * 4
    again = runner.invoke(app, [*args, "--ram-bandwidth", "measure"])
    assert json.loads(again.output)["assumptions"]["ram_bandwidth_bytes_per_s"] == 12 * 10**9
    kept = json.loads(runner.invoke(app, args).output)["assumptions"]
    assert kept["ram_bandwidth_bytes_per_s"] == 12 * 10**9
    assert kept["ram_bandwidth_source"].endswith(", kept")


@pytest.mark.parametrize(
    ("found", "shown"),
    [((), "none of the catalog's frameworks"), (("ollama", "vllm"), "installed: ollama, vllm")],
)
def test_every_hardware_line_has_its_label_apart_from_its_text(
    found: tuple[str, ...], shown: str
) -> None:
    """`canirun hardware` (and the scan's header) once printed "Frameworksnone of the
    catalog's found": a label as long as the label column. Each labelled line must read
    "Label  text"."""
    import re

    from canirun.catalog import load_catalog
    from canirun.hardware.model import Hardware, Host, Software
    from canirun.output.hardware_text import render_hardware
    from canirun.whatif import WhatIf, apply

    base = Host(Hardware(software=Software(frameworks=found)))
    host = apply(base, WhatIf(gpus=("H100",), ram=2**36), load_catalog().gpus)
    lines = render_hardware(host).splitlines()
    labelled = [line for line in lines if line[:1].isalpha()]
    assert {line.split()[0] for line in labelled} >= {"Machine", "Memory", "GPU", "Software"}
    bad = [line for line in labelled if not re.match(r"[A-Z][A-Za-z]* +\S", line)]
    assert bad == []
    assert f"Software {shown}" in lines
