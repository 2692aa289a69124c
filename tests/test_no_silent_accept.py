"""Nothing silently accepted: sizes without a unit, odd --gpu counts, bools as numbers,
non-finite numbers, a KV cache type the framework lacks, and a gate that does nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun.catalog import load_catalog
from canirun.cli import app
from canirun.errors import InputError
from canirun.hardware.file import load_hardware_file
from canirun.options import bandwidth_flag, size_flag
from canirun.whatif import parse_gpu

runner = CliRunner()
GIB = 2**30
CATALOG = load_catalog(user_dir=False)


def one_line_exit_2(args: list[str], *needles: str) -> str:
    out = runner.invoke(app, args)
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith("canirun: error: "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr
    return out.stderr


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    path = tmp_path / "hw.json"
    path.write_text(
        json.dumps(
            {
                "cpu": {"logical_cores": 8, "arch": "x86_64"},
                "memory": {"total_bytes": 16 * GIB, "bandwidth_bytes_per_s": 50 * 10**9},
                "os": {"system": "Linux", "machine": "x86_64"},
            }
        )
    )
    return path


# -- sizes need a unit ----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--ram", "--vram"])
@pytest.mark.parametrize("value", ["64", "24", "0.5", " 64 ", "1e3"])
def test_sizes_without_a_unit_are_refused(flag: str, value: str, machine: Path) -> None:
    err = one_line_exit_2(["scan", "--hardware", str(machine), flag, value], flag)
    if value.strip() in ("64", "24", "0.5"):
        assert "no unit" in err
        assert "GiB" in err  # the accepted forms are listed


@pytest.mark.parametrize("value", ["80", "80.5", "0"])
def test_bandwidth_without_a_unit_is_refused(value: str, machine: Path) -> None:
    one_line_exit_2(
        ["scan", "--hardware", str(machine), "--ram-bandwidth", value], "--ram-bandwidth", "GB/s"
    )


@pytest.mark.parametrize("value", ["24B", "1000KB", "0GB"])
def test_sizes_too_small_for_any_machine_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="less than 1 MiB"):
        size_flag("--vram", value)


def test_sizes_and_rates_with_units_still_work() -> None:
    assert size_flag("--ram", "64GB") == 64 * 10**9
    assert size_flag("--ram", "16 GiB") == 16 * GIB
    assert bandwidth_flag("80GB/s") == (False, 80 * 10**9, False)
    assert bandwidth_flag("off") == (False, None, False)
    assert bandwidth_flag(None) == (True, None, False)  # the kept figure, else a copy test
    assert bandwidth_flag("measure") == (True, None, True)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789. ", min_size=1, max_size=12))
def test_no_bare_number_is_ever_a_size(text: str) -> None:
    with pytest.raises(InputError):
        size_flag("--ram", text)
    with pytest.raises(InputError):
        bandwidth_flag(text)


# -- --gpu counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["-1x RTX 4090", "2x 3x RTX 4090", "1.5x RTX 4090", "RTX 4090 x2", "x RTX 4090", "+2x H100"],
)
def test_odd_gpu_counts_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="--gpu"):
        parse_gpu(text, CATALOG.gpus)


def test_every_gpu_name_and_alias_reads_as_one_gpu() -> None:
    """Found while fixing the counts: "7900 XTX" was read as 7,900 GPUs called "TX"."""
    for spec in CATALOG.gpus:
        for name in (spec.name, *spec.aliases):
            assert parse_gpu(name, CATALOG.gpus) == (1, spec), name
            if not spec.unified_memory:  # a unified chip is a whole machine: named once
                assert parse_gpu(f"2x {name}", CATALOG.gpus) == (2, spec), name


# -- hardware files: strict types, finite numbers -------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"memory": {"total_bytes": true}}', "memory.total_bytes"),
        ('{"memory": {"total_bytes": "64"}}', "memory.total_bytes"),
        ('{"memory": {"total_bytes": 1.5}}', "memory.total_bytes"),
        ('{"cpu": {"usable_cores": false}}', "cpu.usable_cores"),
        ('{"gpus": [{"vendor": "nvidia", "name": "x", "memory_total_bytes": true}]}', "gpus.0"),
        ('{"memory": {"total_bytes": NaN}}', "NaN"),
        ('{"cpu": {"usable_cores": Infinity}}', "Infinity"),
        ('{"cpu": {"usable_cores": -Infinity}}', "Infinity"),
        ('{"cpu": {"max_frequency_mhz": 1e400}}', "finite"),
    ],
)
def test_hardware_files_refuse_bools_strings_and_non_finite_numbers(
    tmp_path: Path, body: str, where: str
) -> None:
    path = tmp_path / "hw.json"
    path.write_text(body)
    with pytest.raises(InputError, match=where.replace(".", r"\.")):
        load_hardware_file(path)
    one_line_exit_2(["hardware", "--hardware", str(path)], str(path))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_toml_hardware_files_refuse_nan_and_inf(tmp_path: Path, value: str) -> None:
    path = tmp_path / "hw.toml"
    path.write_text(f"[cpu]\nusable_cores = {value}\n")
    with pytest.raises(InputError, match="finite"):
        load_hardware_file(path)


def test_a_hand_written_file_with_plain_numbers_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "hw.json"
    path.write_text('{"cpu": {"usable_cores": 4, "logical_cores": 8}, "gpus": []}')
    host = load_hardware_file(path)
    assert host.hardware.cpu.usable_cores == 4.0


# -- KV cache types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "kv"), [("llama.cpp", "fp8"), ("vllm", "q4_0"), ("vllm", "q8_0")]
)
def test_a_kv_cache_type_the_chosen_framework_lacks_is_refused(
    framework: str, kv: str, machine: Path
) -> None:
    one_line_exit_2(
        ["check", "llama3:8b", "--hardware", str(machine), "-f", framework, "--kv-cache", kv],
        "--kv-cache",
        kv,
    )


@settings(max_examples=12, deadline=None)
@given(
    kv=st.sampled_from(["f16", "q8_0", "q4_0", "fp8"]),
    model=st.sampled_from(["llama3:8b", "mixtral"]),
)
def test_every_kv_line_uses_the_requested_type(kv: str, model: str) -> None:
    out = runner.invoke(
        app,
        ["check", model, "--json", "--gpu", "H100", "--ram", "256GB", "--kv-cache", kv],
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["assumptions"]["workload"]["kv_cache_type"] == kv
    for r in report["results"]:
        lines = [b for b in (r["memory"] or {}).get("breakdown", []) if b.startswith("KV cache: ")]
        for line in lines:
            used = line.rsplit("(", 1)[1].rstrip(")")
            assert used == kv or (kv == "f16" and used == "fp32"), (r["framework"], line)
        if kv != "f16" and r["framework"]:
            assert kv in CATALOG.framework_by_id[r["framework"]].kv_cache_types


@pytest.mark.parametrize("kv", ["bf16", "fp32", "q5_0"])
def test_kv_cache_types_no_framework_is_rated_with_are_refused(kv: str) -> None:
    one_line_exit_2(["check", "llama3:8b", "--kv-cache", kv], "--kv-cache", "fp8")


def test_no_framework_with_the_type_is_said_so(machine: Path) -> None:
    out = runner.invoke(
        app,
        [
            "check",
            "llama3:8b",
            "--json",
            "--hardware",
            str(machine),
            "-p",
            "Q4_K_M",
            "--kv-cache",
            "fp8",
        ],
    )
    report = json.loads(out.stdout)
    (r,) = report["results"]
    assert r["verdict"] == "unsupported"
    assert "fp8" in " ".join(r["reasons"])


# -- scan --require gates the exit code in every format -------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "junit"])
def test_scan_require_gates_the_exit_code(fmt: str, machine: Path) -> None:
    base = ["scan", "--hardware", str(machine), "--format", fmt, "-p", "Q4_K_M"]
    unmet = runner.invoke(app, [*base, "--require", "gpu"])  # no GPU on this machine
    assert unmet.exit_code == 1, unmet.output
    if fmt == "text":
        assert "Requirement NOT met" in unmet.stdout
        met = runner.invoke(app, [*base, "--require", "cpu"])
        assert met.exit_code == 0, met.output
        plain = runner.invoke(app, base)
        assert plain.exit_code == 0, plain.output


@pytest.mark.parametrize(
    ("old", "new", "read"),
    [
        # Numbers the matrix uses: a bool is no byte count, NaN or 1e999 no speed.
        ('"total_bytes": 68719476736', '"total_bytes": true', False),
        ('"tokens_per_second": null', '"tokens_per_second": NaN', False),
        ('"tokens_per_second": null', '"tokens_per_second": 1e999', False),
        # Numbers fleet never reads (a key it ignores, the per-variant results, which
        # canirun's layout lets it skip unread): the clean report's column, whatever
        # the layout.
        ('"kind": "scan"', '"kind": "scan", "x": Infinity', True),
        ("last", '"estimate": NaN', True),
        ("last", '"estimate": 1e999', True),
    ],
)
def test_fleet_checks_the_numbers_it_uses(tmp_path: Path, old: str, new: str, read: bool) -> None:
    import dataclasses

    from canirun.fleet import MachineReport, Skipped, read_report

    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"memory": {"total_bytes": 64 * GIB}}))
    report = tmp_path / "r.json"
    out = runner.invoke(app, ["scan", "--hardware", str(hw), "--json", "--output", str(report)])
    assert out.exit_code == 0
    text = report.read_text()
    clean = read_report(report)
    assert isinstance(clean, MachineReport)
    if old == "last":
        at = text.rfind('"estimate": true')
        assert at > text.rfind('"results"')
        text = text[:at] + new + text[at + len('"estimate": true') :]
    else:
        assert old in text
        text = text.replace(old, new, 1)
    report.write_text(text)
    compact = tmp_path / "compact.json"  # another writer's layout, read whole
    compact.write_text(json.dumps(json.loads(text)))
    for path in (report, compact):
        got = read_report(path)
        if read:
            assert got == dataclasses.replace(clean, file=str(path))
        else:
            assert isinstance(got, Skipped), got
            assert "finite number" in got.reason or "wrong type" in got.reason
