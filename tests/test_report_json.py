"""The command line writes scan and check JSON from the report's data (report.Pending),
without building the report model: the bytes must be what the validated model writes."""

from __future__ import annotations

import dataclasses
import json

import msgspec
import pytest

from canirun import jsonsafe, report, report_json
from canirun.estimate.rate import Options
from canirun.estimate.results import Workload
from canirun.evaluate import check_report, scan_report
from canirun.options import Gate
from canirun.report_json import Pending
from tests.test_estimate import CATALOG, GIB, gpu, host

HOSTS = {
    "laptop": host(ram=16 * GIB),
    "RTX 4090": host(gpus=(gpu(),)),
    "2x 80 GB": host(ram=512 * GIB, gpus=(gpu(80 * GIB), gpu(80 * GIB, index=1))),
}


def _model_json(pending: Pending) -> str:  # type: ignore[type-arg]
    return jsonsafe.dumps_model(pending.model, indent=2)


@pytest.mark.parametrize("machine", HOSTS.values(), ids=HOSTS.keys())
def test_scan_json_is_the_models(machine) -> None:  # type: ignore[no-untyped-def]
    opts = Options(workload=Workload(context_tokens=8192, kv_cache_type="q8_0"))
    pending, _ = scan_report(machine, CATALOG, opts, ram_bandwidth=80 * 10**9)
    text = pending.json()
    assert text == _model_json(pending)
    assert len(json.loads(text)["results"]) > 500


def test_check_json_is_the_models_with_a_gate_and_matches() -> None:
    queries = ["llama3:8b", "whisper", "qwen 7b"]
    pending, _ = check_report(HOSTS["RTX 4090"], CATALOG, Options(), queries, Gate(level="gpu"))
    assert pending.json() == _model_json(pending)
    assert pending.requirement_met is pending.model.requirement_met is not None
    assert json.loads(pending.json())["matches"][0]["query"] == "llama3:8b"


def test_nested_models_are_written_in_field_order_with_defaults() -> None:
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["phi"], Gate())
    match = pending.data["matches"][0]
    # Keys in another order and a default left out: still the model's bytes.
    shuffled = {"model_id": match["model_id"], "how": match["how"], "query": match["query"]}
    data = {**pending.data, "matches": [shuffled]}
    for defaulted in ("partial", "probe_issues", "schema_version"):
        del data[defaulted]  # false, [] and the schema's version by default
    again = Pending("CheckReport", data)
    assert again.json() == _model_json(again)
    assert list(json.loads(again.json())["matches"][0]) == [
        "query",
        "model_id",
        "how",
        "precision",
        "note",
    ]
    assert json.loads(again.json())["probe_issues"] == []


def test_odd_values_are_written_as_the_model_writes_them() -> None:
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["llama3:8b"], Gate())
    odd = "a\x85b\u2028c \x1b[31m é\x7f\u2029\x9f\x80"
    results = [dataclasses.replace(r, reasons=(odd, *r.reasons)) for r in pending.data["results"]]
    summary = [
        dataclasses.replace(s, tokens_per_second=float("nan")) for s in pending.data["summary"]
    ]
    again = Pending("CheckReport", {**pending.data, "results": results, "summary": summary})
    text = again.json()
    assert text == _model_json(again)
    assert "\\u0085" in text
    assert "\\u2028" in text
    assert all(f"\\u{c:04x}" in text for c in (0x7F, 0x2029, 0x9F, 0x80))
    assert "NaN" not in text
    assert json.loads(text)["summary"][0]["tokens_per_second"] is None


def test_an_unknown_field_is_refused_as_validation_would() -> None:
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["phi"], Gate())
    with pytest.raises(ValueError, match="unknown fields"):
        Pending("CheckReport", {**pending.data, "surprise": 1}).json()


def test_the_layout_table_is_the_report_models() -> None:
    """schema/report-layout.json is generated (scripts/compile_catalog.py): it must be what
    the report models declare, or the JSON would drift from what they write."""
    fresh = {name: [tuple(row) for row in rows] for name, rows in report.layout_table().items()}
    assert report_json.layout() == fresh, "run: python scripts/compile_catalog.py"
    assert {"ScanReport", "CheckReport", "Assumptions", "MatchInfo", "ClusterInfo"} <= set(fresh)


@pytest.mark.parametrize("figure", [1e16, 2.5e300, -3e17, 1e15, 1.5e-7])
def test_a_float_with_an_exponent_is_written_as_the_model_writes_it(figure: float) -> None:
    """msgspec writes 1e16 as `1e16`, pydantic as `1e+16`: such a report must not change."""
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["llama3:8b"], Gate())
    summary = [dataclasses.replace(s, tokens_per_second=figure) for s in pending.data["summary"]]
    again = Pending("CheckReport", {**pending.data, "summary": summary})
    text = again.json()
    assert text == _model_json(again)
    assert json.loads(text)["summary"][0]["tokens_per_second"] == figure


def test_text_that_looks_like_an_exponent_is_written_as_the_model_writes_it() -> None:
    """The exponent check reads the compact JSON, where a string such as "1e16," matches
    too: the report is then written by pydantic_core, and must read the same."""
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["llama3:8b"], Gate())
    summary = [
        dataclasses.replace(s, reason="about 1e16, then 2e5}") for s in pending.data["summary"]
    ]
    again = Pending("CheckReport", {**pending.data, "summary": summary})
    assert report_json.has_positive_exponent(
        msgspec.json.encode(report_json.plain("CheckReport", again.data))
    )
    assert again.json() == _model_json(again)


@pytest.mark.parametrize(
    ("compact", "found"),
    [
        (b"[1e16]", True),
        (b'{"a":2.5e300}', True),
        (b"[1.7976931348623157e308,1]", True),
        (b"[1e-05]", False),
        (b'["e5-large","e1"]', False),
        (b"[1000000000000000.0]", False),
        (b'{"u":"tree/3a66e3b7e1","v":[5e2x]}', False),  # hashes: e1, e2, e3 not ending a number
        (b'{"u":"3a66e3b7","v":{"w":1.25e17}}', True),  # the first e3 is not it, a later e1 is
        (b'{"u":"e2","v":9e22}', True),
    ],
)
def test_the_exponent_check_finds_every_positive_exponent(compact: bytes, found: bool) -> None:
    assert report_json.has_positive_exponent(compact) is found


def test_the_exponent_check_answers_as_a_search_for_every_exponent() -> None:
    """has_positive_exponent looks only for exponents that start with 1, 2 or 3 (msgspec's
    are 16 to 308): on a real report's JSON, and on that JSON with a number or a look-alike
    put in at many places, it must answer as the search for every exponent does."""
    import random
    import re

    whole = re.compile(rb"e[0-9]+[,\]}]")  # every exponent, of any first digit
    pending, _ = scan_report(HOSTS["RTX 4090"], CATALOG, Options(), ram_bandwidth=80 * 10**9)
    compact = msgspec.json.encode(report_json.plain("ScanReport", pending.data))
    assert compact.count(b"e1") + compact.count(b"e2") > 20  # the hashes in sources' URLs
    texts = [compact]
    rng = random.Random(15)
    for _ in range(60):
        at = rng.randrange(len(compact))
        piece = rng.choice([b"1e16,", b"2.5e300]", b"e3}", b"e1", b"e2x", b"9e-17,", b"1e-05]"])
        texts.append(compact[:at] + piece + compact[at:])
    for text in texts:
        assert report_json.has_positive_exponent(text) is (whole.search(text) is not None)
    assert any(report_json.has_positive_exponent(t) for t in texts)
    assert not report_json.has_positive_exponent(compact)


def test_msgspec_writes_an_exponent_only_from_1e16() -> None:
    """has_positive_exponent's substring tests rest on this: exponents 16 to 308 only."""
    written = [msgspec.json.encode(float(f"{m}e{k}")) for m in (1, 9.99) for k in range(300)]
    exponents = {int(t.split(b"e")[1]) for t in written if b"e" in t}
    assert min(exponents) == 16
    assert max(exponents) <= 308


def test_a_nested_report_model_given_as_a_model_is_written_the_same() -> None:
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["phi"], Gate())
    cluster = report.ClusterInfo(
        source="what-if", nodes=(report.ClusterNodeInfo(name="a", gpus=2),), notes=("n",)
    )
    data = {**pending.data, "assumptions": {**pending.data["assumptions"], "cluster": cluster}}
    again = Pending("CheckReport", data)
    assert again.json() == _model_json(again)
    assert json.loads(again.json())["assumptions"]["cluster"]["nodes"][0]["gpu"] is None


def test_a_missing_required_field_is_refused() -> None:
    pending, _ = check_report(HOSTS["laptop"], CATALOG, Options(), ["phi"], Gate())
    data = {k: v for k, v in pending.data.items() if k != "created_at"}
    with pytest.raises(ValueError, match="created_at"):
        Pending("CheckReport", data).json()


@pytest.mark.parametrize("machine", HOSTS.values(), ids=HOSTS.keys())
def test_the_frameworks_listing_is_the_models(machine) -> None:  # type: ignore[no-untyped-def]
    from canirun.commands import framework_listing_json, tool
    from canirun.evaluate import framework_statuses, machine_capacity

    found = framework_statuses(CATALOG, machine_capacity(machine, CATALOG))
    entries = [
        {"framework": f, "status": s} for f, s in zip(CATALOG.frameworks, found, strict=True)
    ]
    listing = report.FrameworkListing(tool=tool(), hardware=machine.hardware, frameworks=entries)
    text = framework_listing_json(CATALOG, machine, found).decode()
    assert text == jsonsafe.dumps_model(listing, indent=2) + "\n"
    served = [e["status"]["models"] for e in json.loads(text)["frameworks"]]
    assert any(served), "some framework serves a model on every one of these machines"
