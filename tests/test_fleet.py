"""Fleet merge, CI formats (Markdown, JUnit) and the HTML page."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped
from typer.testing import CliRunner

from canirun.cli import app
from canirun.fleet import merge, read_report
from canirun.report import FleetReport

runner = CliRunner()
GIB = 2**30


def machine(tmp_path: Path, name: str, ram_gib: int, vram_gib: int | None = None) -> Path:
    hw = {
        "cpu": {"logical_cores": 8},
        "memory": {"total_bytes": ram_gib * GIB},
        "gpus": [
            {
                "vendor": "nvidia",
                "name": "NVIDIA GeForce RTX 4090",
                "memory_total_bytes": vram_gib * GIB,
            }
        ]
        if vram_gib
        else [],
        "os": {"system": "Linux", "machine": "x86_64"},
    }
    path = tmp_path / f"{name}-hw.json"
    path.write_text(json.dumps(hw))
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three machines' scan reports (one of them twice), plus bad files."""
    tmp = tmp_path_factory.mktemp("fleet")
    out = tmp / "reports"
    out.mkdir()
    for name, ram, vram in (("laptop", 16, None), ("ws", 64, 24), ("server", 512, 80)):
        hw = machine(tmp, name, ram, vram)
        result = runner.invoke(
            app, ["scan", "--hardware", str(hw), "--json", "--ram-bandwidth", "off"]
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        data["machine"] = {"hostname": name, "id": f"{name}-id"}
        (out / f"{name}.json").write_text(json.dumps(data))
        if name == "laptop":  # an older report of the same machine, when it had less RAM
            data["created_at"] = "2020-01-01T00:00:00Z"
            data["summary"][0]["verdict"] = "too-big"
            (out / "laptop-old.json").write_text(json.dumps(data))
    good = (out / "ws.json").read_text()
    (out / "corrupt.json").write_text("{not json")
    (out / "truncated.json").write_text(good[: len(good) // 2])
    (out / "foreign.json").write_text(json.dumps({"name": "something else"}))
    newer = json.loads(good)
    newer["schema_version"] = "2.0"
    (out / "future.json").write_text(json.dumps(newer))
    hardware_only = runner.invoke(app, ["hardware", "--json"]).stdout
    (out / "hardware.json").write_text(hardware_only)
    return out


def test_merge_counts_skips_and_keeps_the_newest(reports: Path) -> None:
    fleet = merge(sorted(reports.glob("*.json")))
    assert [m.hostname for m in fleet.machines] == ["laptop", "server", "ws"]
    assert fleet.superseded == 1
    laptop = next(m for m in fleet.machines if m.hostname == "laptop")
    assert laptop.created_at != "2020-01-01T00:00:00Z"
    reasons = {Path(s.file).name: s.reason for s in fleet.skipped}
    assert set(reasons) == {
        "corrupt.json",
        "truncated.json",
        "foreign.json",
        "future.json",
        "hardware.json",
    }
    assert "schema 2.0" in reasons["future.json"]
    assert "not valid JSON" in reasons["truncated.json"]
    assert "no model results" in reasons["hardware.json"]


def test_read_report_never_raises(tmp_path: Path) -> None:
    for content in (b"", b"\xff\xfe", b"[]", b'{"schema_version": 1}', b"null", b'{"tool": []}'):
        path = tmp_path / "x.json"
        path.write_bytes(content)
        assert read_report(path).__class__.__name__ == "Skipped"
    assert read_report(tmp_path / "missing.json").__class__.__name__ == "Skipped"


def test_fleet_json_is_a_valid_report(reports: Path) -> None:
    result = runner.invoke(app, ["fleet", str(reports), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = FleetReport.model_validate_json(result.stdout)
    assert len(report.machines) == 3
    row = next(r for r in report.rows if r.model_id == "llama-3-70b")
    verdicts = {c.machine.split("#")[0]: c.verdict for c in row.cells}
    assert verdicts == {"laptop": "too-big", "server": "gpu", "ws": "offload"}
    assert "skipped" in result.stderr


def test_fleet_csv_and_markdown(reports: Path) -> None:
    csv_out = runner.invoke(app, ["fleet", str(reports), "--format", "csv"]).stdout
    header = csv_out.splitlines()[0].split(",")
    assert header == ["model_id", "name", "category", "laptop", "server", "ws"]
    md = runner.invoke(app, ["fleet", str(reports / "*.json")]).stdout
    assert "| Model | laptop | server | ws |" in md
    assert "5 files skipped, 1 older reports replaced" in md


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_fleet_html_is_self_contained_and_structured(reports: Path, tmp_path: Path) -> None:
    target = tmp_path / "fleet.html"
    result = runner.invoke(
        app, ["fleet", str(reports), "--format", "html", "--output", str(target)]
    )
    assert result.exit_code == 0
    page = target.read_text()
    parser = _Collector()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags.count("table") == 1
    assert tags.count("select") == 1
    headers = [a for t, a in parser.tags if t == "th"]
    assert len(headers) == 2 + 3  # model, category, three machines
    rows = [a for t, a in parser.tags if t == "tr" and "data-category" in a]
    assert len(rows) >= 100
    assert {a["data-category"] for a in rows} >= {"foundation", "vision", "speech"}
    assert all(not (a.get("src") or a.get("href")) for _, a in parser.tags)  # no external assets
    assert "http" not in page.split("<script>")[1]  # no network from the script


def test_fleet_html_escapes_report_text(tmp_path: Path) -> None:
    data = json.loads(
        runner.invoke(
            app,
            [
                "scan",
                "--json",
                "--ram-bandwidth",
                "off",
                "--hardware",
                str(machine(tmp_path, "x", 16)),
            ],
        ).stdout
    )
    data["machine"] = {"hostname": "<script>alert(1)</script>", "id": "x"}
    (tmp_path / "evil.json").write_text(json.dumps(data))
    page = runner.invoke(app, ["fleet", str(tmp_path / "evil.json"), "--format", "html"]).stdout
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_fleet_with_nothing_readable_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("nope")
    result = runner.invoke(app, ["fleet", str(tmp_path)])
    assert result.exit_code == 2
    assert "none of the 1 files" in result.stderr
    assert runner.invoke(app, ["fleet", str(tmp_path / "none*.json")]).exit_code == 2


# -- CI formats on scan/check ---------------------------------------------------------


def test_junit_has_a_case_per_model_and_fails_below_require(tmp_path: Path) -> None:
    hw = machine(tmp_path, "ws", 64, 24)
    target = tmp_path / "junit.xml"
    result = runner.invoke(
        app,
        [
            "check",
            "llama",
            "gpt-4o",
            "--hardware",
            str(hw),
            "--format",
            "junit",
            "--require",
            "gpu",
            "--all",
            "--output",
            str(target),
        ],
    )
    assert result.exit_code == 1  # with --all: the 70B and 405B models do not run on the GPU
    xml = JUnitXml.fromfile(str(target))
    cases = {case.name: case for suite in xml for case in suite}
    assert "llama-3-8b" in cases
    assert not cases["llama-3-8b"].result
    assert isinstance(cases["llama-3-70b"].result[0], Failure)
    assert isinstance(cases["gpt-4o-2024-08-06"].result[0], Skipped)


def test_markdown_and_github_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    hw = machine(tmp_path, "ws", 64, 24)
    result = runner.invoke(
        app,
        ["check", "llama3:8b", "--hardware", str(hw), "--format", "markdown", "--github-summary"],
    )
    assert result.exit_code == 0
    assert "| Llama 3 8B | GPU |" in result.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, never replaced
    assert "| Llama 3 8B | GPU |" in text


def test_github_summary_outside_github(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = runner.invoke(app, ["check", "llama3:8b", "--github-summary"])
    assert result.exit_code == 2
    assert "GITHUB_STEP_SUMMARY" in result.stderr


def test_format_conflicts() -> None:
    assert runner.invoke(app, ["scan", "--json", "--format", "junit"]).exit_code == 2
    assert runner.invoke(app, ["scan", "--format", "yaml"]).exit_code == 2


@pytest.mark.parametrize("category", [None, "code", "no-such-category"])
def test_fleet_json_row_by_row_is_the_whole_report(reports: Path, category: str | None) -> None:
    # render_json writes one row at a time; the bytes are those of the whole model,
    # names that need escaping included (quotes, a newline, C1 controls, U+2028).
    import dataclasses

    from canirun import jsonsafe
    from canirun.output import fleet_formats

    fleet = merge(sorted(reports.glob("*.json")))
    odd = 'a "quoted"\nname\x85\u2028\\'
    first = fleet.machines[0]
    fleet.machines[0] = dataclasses.replace(
        first, hostname=odd, models={k: (odd, c) for k, (_, c) in first.models.items()}
    )
    view = fleet_formats.matrix(fleet, category)
    whole = jsonsafe.dumps_model(fleet_formats.fleet_report(view), indent=2) + "\n"
    assert fleet_formats.render_json(view) == whole
    assert (len(view.rows) > 0) == (category != "no-such-category")
