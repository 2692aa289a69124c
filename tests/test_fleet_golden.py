"""`canirun fleet` output is byte-identical to the stored one (tests/golden-fleet/).

The inputs are the stored golden reports (tests/golden/), given hostnames and dates
by editing their text, so canirun's own layout is kept where a case needs it: full
scans, an older scan of the same machine, newer checks merged into a column, a
machine known only from checks, two machines sharing a hostname, a what-if report,
a compact (non-canirun) layout, and files that are corrupt, truncated, foreign or of
a future schema. The stored outputs were written before the fleet reader was made
fast, so the new reader must read exactly what the old one read.

After an intended change (the golden reports were regenerated, a new column):
``PYTHONPATH=src python -m tests.test_fleet_golden`` rewrites them; read the diff.
"""

from __future__ import annotations

import functools
import gzip
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.golden_cases import FIXED_TIME
from tests.golden_cases import read_golden as _read_golden

read_golden = functools.cache(_read_golden)  # several inputs start from the same report

STORED = Path(__file__).parent / "golden-fleet"
# (format, extra flags): every renderer, and a category filter.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "markdown": ("--format", "markdown"),
    "csv": ("--format", "csv"),
    "json": ("--format", "json"),
    "html": ("--format", "html"),
    "html-code": ("--format", "html", "--category", "code"),
}


def _report(case: str, hostname: str, machine_id: str, created_at: str) -> str:
    """A stored report as another machine wrote it, in canirun's own layout."""
    _, text = read_golden(case)
    machine = '"machine": {\n    "hostname": null,\n    "id": null\n  }'
    assert text.count(machine) == 1
    text = text.replace(
        machine,
        f'"machine": {{\n    "hostname": "{hostname}",\n    "id": "{machine_id}"\n  }}',
    )
    old_time = f'"created_at": "{FIXED_TIME}"'
    assert text.startswith('{\n  "schema_version"')
    assert old_time in text
    return text.replace(old_time, f'"created_at": "{created_at}"', 1)


def write_inputs(folder: Path) -> None:
    files = {
        "ws.json": _report("scan-workstation", "ws", "ws-1", "2026-12-01T00:00:00Z"),
        "ws-old.json": _report("scan-workstation", "ws", "ws-1", "2026-11-01T00:00:00Z"),
        "ws-check.json": _report("check-workstation", "ws", "ws-1", "2026-12-02T00:00:00Z"),
        "laptop.json": _report("scan-laptop", "laptop", "lt-1", "2026-12-01T00:00:00Z"),
        "laptop-gate.json": _report("check-laptop-gate", "laptop", "lt-1", "2026-12-03T00:00:00Z"),
        "twin.json": _report("scan-laptop", "ws", "ws-2", "2026-12-01T00:00:00Z"),
        "checker.json": _report("check-workstation", "checker", "ck-1", "2026-12-01T00:00:00Z"),
        "mac-what-if.json": _report("scan-mac", "mac", "mac-1", "2026-12-01T00:00:00Z"),
    }
    laptop = json.loads(files["laptop.json"])
    laptop["machine"] = {"hostname": "compact", "id": "cp-1"}
    files["compact.json"] = json.dumps(laptop)  # another writer's layout: read whole
    future = json.loads(files["checker.json"])
    future["schema_version"] = "2.0"
    files["future.json"] = json.dumps(future, indent=2)
    files["truncated.json"] = files["ws.json"][: len(files["ws.json"]) // 2]
    files["corrupt.json"] = "{not json"
    files["foreign.json"] = json.dumps({"name": "something else"})
    for name, text in files.items():
        (folder / name).write_text(text)


@contextmanager
def _fixed_clock() -> Iterator[None]:
    from canirun.output import fleet_formats

    saved = fleet_formats.now_utc
    fleet_formats.now_utc = lambda: FIXED_TIME
    try:
        yield
    finally:
        fleet_formats.now_utc = saved


def run_fleet(folder: Path, output: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `canirun fleet FOLDER ...`, the folder named <dir>."""
    from typer.testing import CliRunner

    from canirun.cli import app

    with _fixed_clock():
        result = CliRunner().invoke(app, ["fleet", str(folder), *OUTPUTS[output]])
    return (
        result.exit_code,
        result.stdout.replace(str(folder), "<dir>"),
        result.stderr.replace(str(folder), "<dir>"),
    )


def _stored(output: str) -> Path:
    return STORED / f"{output}.out.gz"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet-golden")
    write_inputs(folder)
    return folder


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_fleet_output_is_unchanged(output: str, inputs: Path) -> None:
    code, out, err = run_fleet(inputs, output)
    stored = gzip.decompress(_stored(output).read_bytes()).decode()
    assert f"{code}\n{err}\n{out}" == stored


def test_the_cases_cover_what_fleet_does(inputs: Path) -> None:
    # The comparison would prove little if the inputs stopped exercising the merge.
    _, out, err = run_fleet(inputs, "json")
    report = json.loads(out)
    labels = {m["key"]: m["partial"] for m in report["machines"]}
    assert labels == {
        "ws#ws-1": False,
        "ws#ws-2": False,
        "laptop#lt-1": False,
        "checker#ck-1": True,
        "compact#cp-1": False,
    }
    assert report["superseded"] == 1
    assert report["partial_merged"] == 3
    skipped = {Path(s["file"]).name for s in report["skipped"]}
    assert skipped == {
        "mac-what-if.json",
        "future.json",
        "truncated.json",
        "corrupt.json",
        "foreign.json",
    }
    assert len(report["rows"]) > 150
    assert "warning: skipped" in err


def main() -> int:
    import tempfile

    STORED.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder)
        for output in OUTPUTS:
            code, out, err = run_fleet(folder, output)
            data = gzip.compress(f"{code}\n{err}\n{out}".encode(), mtime=0)
            _stored(output).write_bytes(data)
            print(f"{output}: exit {code}, {len(out):,} characters", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
