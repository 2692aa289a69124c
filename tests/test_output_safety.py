"""Output that is always valid, whatever the names in catalogs, hardware files and reports.

Properties, each over hostile text (control characters, escape sequences,
surrogates, markup, formula starters, pipes, newlines) put in every name a
renderer prints: JUnit always parses with xml.etree; JSON always parses with
NaN/Infinity refused; every Markdown table row keeps its column count; no CSV
cell starts a formula; terminal text carries no control character but newline
and no escape sequence but canirun's own colours.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun import jsonsafe
from canirun.catalog import load_catalog
from canirun.cli import app
from canirun.estimate.rate import Options
from canirun.evaluate import check_report
from canirun.fleet import Cell, Fleet, MachineReport
from canirun.hardware.model import Cpu, Gpu, Hardware, Host, Machine, Memory, OsInfo
from canirun.options import Gate
from canirun.output import ci_formats, fleet_formats, safe, scan_text
from canirun.output.check_text import render_check
from canirun.output.hardware_text import render_hardware

runner = CliRunner()
GIB = 2**30
CATALOG = load_catalog(user_dir=False)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Everything a terminal may obey: C0 but newline, DEL, C1, bidi controls, surrogates.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
OUR_COLOURS = re.compile(r"\x1b\[(?:\d+)m")

nasty_pieces = st.sampled_from(
    [
        "\x1b[2J",
        "\x1b]0;pwned\x07",
        "\x9b31m",
        "\x00",
        "\r",
        "\n",
        "\t",
        "\ud800",
        "\udfff",
        "\ufffe",
        "\u202e",
        "|",
        "||",
        "`",
        "<script>",
        "]]>",
        "&",
        '"',
        "=cmd|' /C calc'!A0",
        "+1",
        "-2",
        "@SUM(1)",
    ]
)
hostile = st.lists(
    st.one_of(nasty_pieces, st.text(st.characters(codec=None), max_size=6)), max_size=6
).map("".join)


def _base_report():  # type: ignore[no-untyped-def]
    host = Host(
        Hardware(
            cpu=Cpu(model="cpu", logical_cores=8, arch="x86_64"),
            memory=Memory(
                total_bytes=64 * GIB, available_bytes=64 * GIB, bandwidth_bytes_per_s=5e10
            ),
            gpus=(
                Gpu(
                    vendor="nvidia",
                    name="NVIDIA GeForce RTX 4090",
                    memory_total_bytes=24 * GIB,
                    memory_free_bytes=24 * GIB,
                    index=0,
                    compute_capability="8.9",
                ),
            ),
            os=OsInfo(system="Linux", machine="x86_64"),
        ),
        Machine(hostname="host"),
    )
    opts = Options()
    pending, _ = check_report(host, CATALOG, opts, ["llama3:8b", "whisper"], Gate(level="gpu"))
    return host, pending.model


HOST, REPORT = _base_report()


def hostile_report(name: str):  # type: ignore[no-untyped-def]
    summary = tuple(dataclasses.replace(s, name=name, reason=name) for s in REPORT.summary)
    results = tuple(
        dataclasses.replace(r, name=name, reasons=(name, *r.reasons)) for r in REPORT.results
    )
    hw = dataclasses.replace(
        REPORT.hardware,
        cpu=dataclasses.replace(REPORT.hardware.cpu, model=name),
        gpus=tuple(dataclasses.replace(g, name=name) for g in REPORT.hardware.gpus),
    )
    return REPORT.model_copy(
        update={
            "summary": summary,
            "results": results,
            "hardware": hw,
            "machine": Machine(hostname=name),
            "requirement": name,
        }
    )


def assert_terminal_safe(text: str) -> None:
    assert not UNSAFE.search(OUR_COLOURS.sub("", text)), repr(text[:200])


def markdown_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


@FUZZ
@given(name=hostile)
def test_junit_always_parses(name: str) -> None:
    xml = ci_formats.render_junit(hostile_report(name))
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    assert int(root.get("tests") or 0) == len(REPORT.summary)


@FUZZ
@given(name=hostile)
def test_markdown_tables_keep_their_columns(name: str) -> None:
    text = ci_formats.render_markdown(hostile_report(name))
    rows = markdown_rows(text)
    assert rows
    widths = {unescaped_pipes(r) for r in rows}
    assert widths == {8}, rows
    assert "<script>" not in text
    text.encode("utf-8")  # no lone surrogate left


@FUZZ
@given(name=hostile)
def test_terminal_text_is_inert(name: str) -> None:
    report = hostile_report(name)
    for colour in (False, True):
        assert_terminal_safe(render_check(report, explain=True, colour=colour))
        assert_terminal_safe(scan_text.render_summary(report, colour=colour))
    host = dataclasses.replace(HOST, hardware=report.hardware, machine=report.machine)
    assert_terminal_safe(render_hardware(host))
    assert_terminal_safe(scan_text.render_frameworks(report.frameworks))


@FUZZ
@given(value=st.floats(allow_nan=True, allow_infinity=True), name=hostile)
def test_json_is_strict_whatever_the_values(value: float, name: str) -> None:
    text = jsonsafe.dumps({"x": value, "nested": [value, {"y": value}], "name": name})
    for forbidden in ("NaN", "Infinity"):
        assert forbidden not in text.replace(name, "") or forbidden in name
    data = jsonsafe.loads(text)
    assert data["name"] == name
    assert not re.search("[\x7f-\x9f]", text)


def fleet_of(name: str) -> Fleet:
    machines = []
    for i in range(2):
        machines.append(
            MachineReport(
                key=f"{name}#{i}",
                hostname=name,
                machine_id=str(i),
                created_at="2026-01-01T00:00:00Z",
                file=f"{name}.json",
                schema_version="1.1",
                cpu=name,
                ram_bytes=GIB,
                gpus=(name,),
                models={name or "m": (name, "foundation")},
                cells={name or "m": Cell("gpu", name, name, 1.5)},
            )
        )
    return Fleet(machines=machines)


@FUZZ
@given(name=hostile)
def test_fleet_formats_are_safe(name: str) -> None:
    fleet = fleet_of(name)
    view = fleet_formats.matrix(fleet)
    for row in csv.reader(io.StringIO(fleet_formats.render_csv(view))):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
            assert not UNSAFE.search(cell)
    md = fleet_formats.render_markdown(view)
    rows = markdown_rows(md)
    assert {unescaped_pipes(r) for r in rows} == {4}, rows
    assert_terminal_safe(md)
    page = fleet_formats.render_html(view)
    assert page.count("<script>") == 1  # its own, inline
    report = fleet_formats.fleet_report(fleet)
    data = jsonsafe.loads(jsonsafe.dumps(report.model_dump(mode="json")))
    assert data["machines"][0]["hostname"] == name


# -- end to end: names from a user catalog and a hardware file ------------------------------


def _toml_string(text: str) -> str:
    return '"' + "".join(c if c.isalnum() or c == " " else f"\\U{ord(c):08x}" for c in text) + '"'


@pytest.fixture
def hostile_files(tmp_path: Path) -> tuple[Path, Path]:
    evil = "Evil\x1b[2J\x1b]0;title\x07|=1+2\u202e"
    catalog = tmp_path / "evil.toml"
    catalog.write_text(
        f"""
[[model]]
id = "evil"
name = {_toml_string(evil)}
family = "evil"
category = "foundation"
kind = "embedding"
task = "embeddings"
access = "open-weights"
license = "MIT"
modalities = ["text"]
frameworks = ["sentence-transformers"]
sources = {{ card = "https://example.org/card" }}

[[model.variants]]
key = "1m"
name = {_toml_string(evil)}
params = {{ total = 1000000, source = "card" }}
"""
    )
    hardware = tmp_path / "hw.json"
    hardware.write_text(
        json.dumps(
            {
                "cpu": {"model": "CPU\x1b[31m\u202e", "logical_cores": 4, "arch": "x86_64"},
                "memory": {"total_bytes": 16 * GIB},
                "os": {"system": "Linux", "machine": "x86_64"},
                "gpus": [
                    {"vendor": "nvidia", "name": "GPU\x1b[8m\x9b2J", "memory_total_bytes": GIB}
                ],
            }
        )
    )
    return catalog, hardware


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "junit"])
def test_hostile_names_end_to_end(hostile_files: tuple[Path, Path], fmt: str) -> None:
    catalog, hardware = hostile_files
    args = ["check", "evil", "--catalog", str(catalog), "--hardware", str(hardware)]
    out = runner.invoke(
        app, [*args, "--format", fmt, "--explain"] if fmt == "text" else [*args, "--format", fmt]
    )
    assert out.exit_code == 0, out.output
    if fmt == "json":
        data = jsonsafe.loads(out.stdout)
        assert "\x1b" in data["hardware"]["gpus"][0]["name"]  # the data is kept as it was
    elif fmt == "junit":
        ET.fromstring(out.stdout.encode("utf-8", "surrogatepass"))
    else:
        assert_terminal_safe(out.stdout)
    hw = runner.invoke(app, ["hardware", "--hardware", str(hardware)])
    assert_terminal_safe(hw.stdout)
    listing = runner.invoke(app, ["list", "--catalog", str(catalog)])
    assert_terminal_safe(listing.stdout)


def test_safe_helpers() -> None:
    assert safe.terminal("a\x1b[2Jb\nc") == "a\\x1b[2Jb\nc"
    assert safe.csv_cell("=1+2") == "'=1+2"
    assert safe.csv_cell("\tx") == "'\\x09x"
    assert safe.markdown_cell("a|b\nc") == "a\\|b c"
    assert safe.xml("a\x01\ud800\ufffeb") == "a\\x01\\ud800\\ufffeb"


def test_a_lone_surrogate_in_a_hardware_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hw.json"
    path.write_text('{"gpus": [{"vendor": "nvidia", "name": "x\\ud800", "memory_total_bytes": 1}]}')
    out = runner.invoke(app, ["hardware", "--hardware", str(path)])
    assert out.exit_code == 2
    assert "gpus.0.name: not valid Unicode" in out.stderr


def test_printable_text_is_left_as_it_is_without_the_pattern() -> None:
    """safe.terminal skips its pattern for printable text: that is right only if every
    character the pattern escapes is one str.isprintable refuses. Checked for all of them."""
    from canirun.output import safe

    pattern = safe._terminal_unsafe()
    escaped = [c for c in range(0x110000) if pattern.fullmatch(chr(c))]
    assert len(escaped) > 2048  # the controls, bidi marks and every surrogate
    assert [hex(c) for c in escaped if chr(c).isprintable()] == []
    assert safe.terminal("GPU 0 · 80.0 GiB · é") == "GPU 0 · 80.0 GiB · é"
    assert safe.terminal("a\x1b[31mb\u202ec") == "a\\x1b[31mb\\u202ec"
