"""Full reports for several machines are byte-identical to the stored ones (tests/golden/).

They were generated before the speed work, so a faster path that changes any figure,
reason or ordering fails here. An intended change: `python scripts/write_golden.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden_cases import CASES, hardware_files, read_golden, run_case


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return hardware_files(tmp_path_factory.mktemp("golden-hw"))


def _first_difference(want: str, got: str) -> str:
    try:
        a, b = json.loads(want), json.loads(got)
    except ValueError:
        a, b = want.splitlines(), got.splitlines()
    return _walk(a, b, "$")


def _walk(a: object, b: object, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _walk(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return _walk(x, y, f"{path}[{i}]")
        if len(a) != len(b):
            return f"{path}: {len(a)} items stored, {len(b)} now"
    return f"{path}: stored {a!r:.300}, now {b!r:.300}"


@pytest.mark.parametrize("case", list(CASES))
def test_output_is_unchanged(case: str, files: dict[str, str]) -> None:
    want_code, want = read_golden(case)
    code, got = run_case(case, files)
    assert code == want_code
    if got != want:
        where = _first_difference(want, got) if want else "(empty)"
        pytest.fail(f"{case} differs from tests/golden ({where}); if intended, regenerate")


def test_the_cases_cover_real_reports() -> None:
    # The comparison would be empty if the cases had stopped producing reports.
    code, out = read_golden("scan-workstation")
    report = json.loads(out)
    assert code == 0
    assert report["kind"] == "scan"
    assert len(report["results"]) > 500
    assert {Path(p).stem for p in Path(__file__).parent.joinpath("golden").glob("*.gz")} == {
        f"{c}.out" for c in CASES
    }


@pytest.mark.parametrize("case", [c for c in CASES if "--json" not in CASES[c]])
def test_text_shows_no_escaped_line_breaks_of_its_own(case: str) -> None:
    """Escaping control characters is for text that came from outside; canirun's own
    multi-line answers (the recommendation and its reasons) are separate lines."""
    _, out = read_golden(case)
    assert "\\x0a" not in out


@pytest.mark.parametrize("case", [c for c in CASES if "--json" in CASES[c]])
def test_json_bytes_are_what_the_standard_encoder_writes(case: str) -> None:
    # Reports are serialised by pydantic's encoder for speed; the bytes stay those of
    # jsonsafe.dumps (json.dumps, indent 2, finite, controls escaped) that readers such
    # as fleet see.
    from canirun import jsonsafe

    _, out = read_golden(case)
    assert jsonsafe.dumps(json.loads(out), indent=2) + "\n" == out


FLEET_CASES = ["scan-workstation", "scan-laptop", "scan-h100-nodes", "check-workstation"]


@pytest.mark.parametrize("case", FLEET_CASES)
def test_fleet_layout_contract(case: str, tmp_path: Path) -> None:
    # fleet reads only what comes before a report's top-level `results` (96 % of it)
    # when the file ends as canirun's layout does (indent 2). Pin that the writer keeps
    # that ending and puts every key fleet reads before `results`, and that the cut is
    # exactly the report without `results` and what follows it (a check's query, matches).
    from canirun.fleet import _LAYOUT_END, HEAD_KEYS, _head

    _, out = read_golden(case)
    assert out.encode().rstrip().endswith(_LAYOUT_END)
    path = tmp_path / "r.json"
    path.write_text(out)
    head = _head(path)
    assert head is not None
    full = json.loads(out)
    keys = list(full)
    assert json.loads(head) == {k: full[k] for k in keys[: keys.index("results")]}
    assert set(HEAD_KEYS) <= set(json.loads(head))


@pytest.mark.parametrize("case", FLEET_CASES)
def test_fleet_reads_every_layout_alike(case: str, tmp_path: Path) -> None:
    # The cut is a shortcut, not a second reader: a compact copy (another writer's
    # layout, no cut) gives the same column or the same reason.
    import dataclasses

    from canirun.fleet import MachineReport, _head, read_report

    _, out = read_golden(case)
    own, compact = tmp_path / "own.json", tmp_path / "compact.json"
    own.write_text(out)
    compact.write_text(json.dumps(json.loads(out)))
    assert _head(compact) is None
    fast, whole = read_report(own), read_report(compact)
    assert isinstance(fast, MachineReport) == (json.loads(out)["basis"] != "what-if")
    assert dataclasses.replace(fast, file="") == dataclasses.replace(whole, file="")


def test_the_fast_encoder_keeps_jsonsafe_rules() -> None:
    # Non-finite numbers become null, C1 controls and line separators are escaped,
    # other text is written raw: byte for byte what jsonsafe.dumps writes.
    from pydantic import BaseModel

    from canirun import jsonsafe

    class Probe(BaseModel):
        name: str
        value: float
        values: list[float]

    model = Probe(name="a\x85b\u2028c é \x1b[31m", value=float("nan"), values=[1e16, 0.1, -0.0])
    assert jsonsafe.dumps_model(model, indent=2) == jsonsafe.dumps(model.model_dump(), indent=2)
