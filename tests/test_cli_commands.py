"""scan, check, list, frameworks and gpus through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.cli import app
from canirun.report import CatalogListing, CheckReport, FrameworkListing, GpuListing, ScanReport
from tests.fakes.fake_nvml import FakeGpu, FakeNvml

runner = CliRunner()
GIB = 2**30

WORKSTATION = {
    "cpu": {"logical_cores": 16, "arch": "x86_64", "flags": ["avx2", "fma"]},
    "memory": {"total_bytes": 64 * GIB},
    "gpus": [
        {
            "vendor": "nvidia",
            "name": "NVIDIA GeForce RTX 4090",
            "memory_total_bytes": 24 * GIB,
            "compute_capability": "8.9",
        }
    ],
    "os": {"system": "Linux", "machine": "x86_64", "docker": {"cli": False}},
}


@pytest.fixture
def box(tmp_path: Path) -> Path:
    path = tmp_path / "workstation.json"
    path.write_text(json.dumps(WORKSTATION))
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_check_text_output(box: Path) -> None:
    result = run(
        "check",
        "llama3:8b",
        "--hardware",
        str(box),
        "-p",
        "Q4_K_M",
        "-p",
        "fp16",
        "--ram-bandwidth",
        "80GB/s",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "Llama 3 8B  (llama-3-8b; ollama tag match for 'llama3:8b')"
    assert lines[2].startswith("  note: Ollama library as of 2024-07-25: llama3:8b is Llama 3 8B")
    assert lines[3].split() == [
        "Precision",
        "Runs",
        "here",
        "Framework",
        "Needs",
        "GPU",
        "layers",
        "tok/s",
    ]
    q4 = next(line for line in lines if line.strip().startswith("Q4_K_M"))
    # llama.cpp's default flash attention (auto: on) keeps the compute buffer small.
    assert q4.split()[:4] == ["Q4_K_M", "GPU", "llama.cpp", "5.6"]
    assert "Recommended here: fp16 with text-generation-webui on the GPU" in result.stdout
    assert "Assumed: context 4,096 tokens" in result.stdout


def test_check_json_validates_and_says_how_each_match_was_found(box: Path) -> None:
    result = run("check", "llama", "whisper large", "--json", "--hardware", str(box))
    assert result.exit_code == 0, result.output
    report = CheckReport.model_validate_json(result.stdout)
    assert report.kind == "check"
    assert report.query == ("llama", "whisper large")
    hows = {(m.query, m.model_id): m.how for m in report.matches}
    assert hows[("llama", "llama-3-8b")] == "family"
    assert {r.model_id for r in report.results} == {m.model_id for m in report.matches}


def test_explain_shows_formula_inputs_and_sources(box: Path) -> None:
    result = run(
        "check",
        "llama3:8b",
        "-p",
        "Q4_K_M",
        "--explain",
        "--hardware",
        str(box),
        "--ram-bandwidth",
        "off",
    )
    assert result.exit_code == 0
    out = result.stdout
    assert "weights: " in out
    assert "KV cache: 512.0 MiB (f16)" in out
    assert "compute buffer" in out
    assert "speed: 1008 GB/s" in out
    assert "sources: https://huggingface.co/meta-llama/Meta-Llama-3-8B" in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["llama3:8b", "--require", "gpu"], 0),
        (["llama 70b", "--require", "gpu"], 1),
        (["llama 70b", "--require", "offload"], 0),
        (["llama", "--require", "gpu", "--all"], 1),
        (["llama3:8b", "--require", "gpu", "--min-tps", "50"], 0),
        (["llama3:8b", "--require", "gpu", "--min-tps", "5000"], 1),
    ],
)
def test_ci_gate_exit_codes(box: Path, args: list[str], code: int) -> None:
    result = run("check", *args, "--hardware", str(box), "--ram-bandwidth", "off")
    assert result.exit_code == code, result.output
    assert ("Requirement met" in result.stdout) == (code == 0)


def test_gate_result_is_in_the_json(box: Path) -> None:
    result = run("check", "llama 70b", "--require", "gpu", "--json", "--hardware", str(box))
    assert result.exit_code == 1
    report = CheckReport.model_validate_json(result.stdout)
    assert report.requirement_met is False
    assert report.requirement is not None
    assert "gpu" in report.requirement


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lama"], "did you mean: llama"),
        ([""], "empty model name"),
        (["llama", "--require", "fastest"], "--require"),
        (["llama", "--all"], "--all only applies"),
        (["llama", "--min-tps", "-3"], "--min-tps"),
        (["llama", "--precision", "Q9_X"], "--precision: unknown precision 'Q9_X'"),
        (["llama", "--framework", "llamacp"], "did you mean llama.cpp"),
        (["llama", "--vram", "lots"], "--vram"),
        (["llama", "--vram", "-3GB"], "--vram"),
        (["llama", "--ram", "1e400"], "--ram"),
        (["llama", "--gpu", "RTX 9999"], "not in the GPU table"),
        (["llama", "--gpu", "0x RTX 4090"], "count"),
        (["llama", "--kv-cache", "q3"], "--kv-cache"),
        (["llama", "--ctx", "0"], "--ctx"),
        (["llama", "--resolution", "1001"], "--resolution"),
        (["llama", "--ram-bandwidth", "fast"], "--ram-bandwidth"),
        (["llama", "--gpu", "M2 Ultra", "--vram", "24GB"], "--vram"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run("check", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_what_if_gpus(fake_nvml) -> None:
    fake_nvml(FakeNvml())
    result = run(
        "check",
        "llama 70b",
        "-p",
        "fp16",
        "--gpu",
        "2x A100 80GB",
        "--json",
        "--ram-bandwidth",
        "off",
    )
    assert result.exit_code == 0, result.output
    report = CheckReport.model_validate_json(result.stdout)
    assert [g.name for g in report.hardware.gpus] == ["NVIDIA A100 80GB SXM"] * 2
    assert "gpus (from --gpu)" in report.hardware.assumed
    assert {r.verdict for r in report.results} == {"multi-gpu"}


def test_what_if_vram_and_ram(fake_nvml) -> None:
    fake_nvml(FakeNvml([FakeGpu()]))
    result = run("check", "llama3:8b", "-p", "F16", "--vram", "8GB", "--ram", "64GiB", "--json")
    assert result.exit_code == 0, result.output
    report = CheckReport.model_validate_json(result.stdout)
    assert report.hardware.gpus[0].memory_total_bytes == 8 * 10**9
    assert report.hardware.memory.total_bytes == 64 * GIB
    assert report.results[0].verdict == "offload"


def test_scan_json_covers_the_whole_catalog(box: Path) -> None:
    result = run("scan", "--json", "--hardware", str(box), "--ctx", "8192")
    assert result.exit_code == 0, result.output
    report = ScanReport.model_validate_json(result.stdout)
    assert report.assumptions.workload.context_tokens == 8192
    ids = {s.model_id for s in report.summary}
    assert {"llama-3-8b", "whisper-large-v3", "gpt-4o-2024-08-06", "sam-vit-h"} <= ids
    llm = [r for r in report.results if r.model_id == "llama-3-8b"]
    wanted = {"Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"}
    wanted |= {"fp16", "bf16", "int8", "int4"}
    assert {r.precision for r in llm} >= wanted
    for r in report.results:
        assert r.reasons, r.model_id


def test_scan_text_groups_by_category(box: Path) -> None:
    result = run("scan", "--hardware", str(box), "--ram-bandwidth", "off")
    assert result.exit_code == 0, result.output
    out = result.stdout
    order = [
        out.index(t)
        for t in (
            "Foundation models",
            "Industry models",
            "Code",
            "Vision",
            "Speech and audio",
            "Embeddings and retrieval",
        )
    ]
    assert order == sorted(order)
    assert "Frameworks that can run here:" in out


def test_scan_output_file(box: Path, tmp_path: Path) -> None:
    target = tmp_path / "scan.json"
    result = run("scan", "--hardware", str(box), "--output", str(target), "--ram-bandwidth", "off")
    assert result.exit_code == 0
    ScanReport.model_validate_json(target.read_text())


def test_list_filters_and_json() -> None:
    result = run("list", "--category", "speech", "--local")
    assert result.exit_code == 0
    assert "whisper-large-v3" in result.stdout
    assert "elevenlabs" not in result.stdout
    listing = CatalogListing.model_validate_json(run("list", "--api", "--json").stdout)
    assert listing.models
    assert all(m.access == "api-only" for m in listing.models)
    assert run("list", "--category", "robots").exit_code == 2


def test_frameworks_says_why_not(box: Path) -> None:
    result = run("frameworks", "--hardware", str(box))
    assert result.exit_code == 0
    assert "AlphaFold" in result.stdout
    assert "needs Docker" in result.stdout
    listing = FrameworkListing.model_validate_json(
        run("frameworks", "--json", "--hardware", str(box)).stdout
    )
    by_id = {e.framework.id: e.status for e in listing.frameworks}
    assert by_id["llama.cpp"].runs_here is True
    assert "GPU 0 (NVIDIA GeForce RTX 4090)" in by_id["llama.cpp"].devices
    assert by_id["hf-inference-endpoints"].runs_here is False
    assert "llama-3-8b" in by_id["llama.cpp"].models


def test_gpus_table() -> None:
    result = run("gpus")
    assert result.exit_code == 0
    assert "RTX 4090" in result.stdout
    listing = GpuListing.model_validate_json(run("gpus", "--json").stdout)
    assert len(listing.gpus) > 20


def test_extra_catalog_flag(tmp_path: Path, box: Path) -> None:
    from tests.test_catalog import USER_MODEL

    extra = tmp_path / "mine.toml"
    extra.write_text(USER_MODEL)
    result = run("check", "tiny 1b", "--catalog", str(extra), "--hardware", str(box))
    assert result.exit_code == 0, result.output
    assert "tiny-test-lm-1b" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[[model]]\nid = 3\n")
    result = run("list", "--catalog", str(bad))
    assert result.exit_code == 2
    assert str(bad) in result.stderr


def test_check_recommends_a_4_bit_quant_on_a_slow_cpu(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"cpu": {"logical_cores": 8}, "memory": {"total_bytes": 64 * GIB}}))
    result = run("check", "llama3:8b", "--hardware", str(path), "--ram-bandwidth", "50GB/s")
    assert result.exit_code == 0
    # fp32 fits in 64 GiB but is never what anyone should run: Q4_K_M is 3x faster.
    assert "Recommended here: Q4_K_M with llama.cpp on the CPU" in result.stdout
    # 16 GB + the 8k KV cache at 0.3-0.45 of 50 GB/s (CPU decode; no clock: memory only).
    assert "Highest quality here: F16 with llama.cpp (CPU, 0.9-1.4 tok/s)." in result.stdout
    quality = run(
        "check",
        "llama3:8b",
        "--hardware",
        str(path),
        "--ram-bandwidth",
        "50GB/s",
        "--prefer",
        "quality",
    )
    assert "Recommended here: F16 with llama.cpp on the CPU" in quality.stdout
    bad = run("check", "llama3:8b", "--hardware", str(path), "--prefer", "fast")
    assert bad.exit_code == 2
    assert "--prefer" in bad.stderr
