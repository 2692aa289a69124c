"""`canirun check` with the references people paste: the name picks the model and the quant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.cli import app
from canirun.report import CheckReport

runner = CliRunner()
GIB = 2**30
LAPTOP = {
    "cpu": {"logical_cores": 8, "arch": "x86_64", "flags": ["avx2", "fma"]},
    "memory": {"total_bytes": 32 * GIB},
    "gpus": [],
    "os": {"system": "Linux", "machine": "x86_64", "docker": {"cli": False}},
}


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    path = tmp_path / "laptop.json"
    path.write_text(json.dumps(LAPTOP))
    return path


def check(laptop: Path, *args: str) -> CheckReport:
    result = runner.invoke(
        app, ["check", *args, "--hardware", str(laptop), "--ram-bandwidth", "50GB/s", "--json"]
    )
    assert result.exit_code == 0, result.output
    return CheckReport.model_validate_json(result.stdout)


def test_a_quant_tag_rates_that_precision_only(laptop: Path) -> None:
    report = check(laptop, "llama3:8b-instruct-q4_K_M", "qwen2.5:7b")
    (tagged, plain) = report.matches
    assert (tagged.model_id, tagged.how, tagged.precision) == ("llama-3-8b", "ollama tag", "Q4_K_M")
    assert plain.precision is None
    by_model: dict[str, set[str | None]] = {}
    for r in report.results:
        by_model.setdefault(r.model_id, set()).add(r.precision)
    assert by_model["llama-3-8b"] == {"Q4_K_M"}
    # The untagged name keeps every precision.
    assert {"Q4_K_M", "Q8_0", "F16"} <= by_model["qwen-2.5-7b"]


def test_the_precision_flag_wins_over_the_tag(laptop: Path) -> None:
    report = check(laptop, "hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "-p", "Q8_0")
    assert {r.precision for r in report.results} == {"Q8_0"}


def test_a_retargeted_tag_says_so_in_the_report(laptop: Path) -> None:
    report = check(laptop, "mistral-small:latest")
    (match,) = report.matches
    assert match.model_id == "mistral-small-24b"
    assert match.note is not None
    assert "2409" in match.note


def test_an_unknown_tag_exits_2_with_typeable_suggestions(laptop: Path) -> None:
    result = runner.invoke(app, ["check", "qwen2.5:8b", "--hardware", str(laptop)])
    assert result.exit_code == 2
    assert "did you mean: qwen2.5:7b" in result.output
    assert "Traceback" not in result.output


def test_explicit_head_dim_sizes_the_kv_cache(laptop: Path) -> None:
    """Mistral NeMo: head_dim 128, not 5120 / 32 = 160 (20% less KV cache per token)."""
    from canirun.catalog import load_catalog

    arch = load_catalog(user_dir=False).variant_by_id["mistral-nemo-12b"].variant.arch
    assert arch is not None
    assert arch.effective_head_dim == 128 != arch.hidden // arch.heads
    report = check(laptop, "mistral-nemo:12b", "-p", "Q4_K_M", "--ctx", "8192")
    (result,) = report.results
    kv = result.memory.kv_cache_bytes if result.memory else None
    # 40 layers x 8 KV heads x 128 x 2 (K and V) x 2 bytes x 8192 tokens = 1.25 GiB
    assert kv == 40 * 8 * 128 * 2 * 2 * 8192
