"""mlx-lm on Apple silicon: its formats, the models it implements, its memory, and where
it never appears. Macs come from the recorded fixtures (tests/fixtures/hardware/apple-*)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from canirun.catalog import load_catalog
from canirun.catalog.constraints import validated
from canirun.catalog.schema import Implements
from canirun.cli import app
from canirun.estimate import mlx
from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.precision import MLX_BPW, lookup
from canirun.hardware import probe
from canirun.hardware.model import Memory, to_jsonable
from tests.test_accelerators import fake_runner

GIB = 2**30
runner = CliRunner()
CATALOG = load_catalog(user_dir=False)
MLX_LM = CATALOG.framework_by_id["mlx-lm"]


def _mac(folder: str, tmp_path: Path, ram: int) -> Path:
    """A probed Mac (recorded sysctl/system_profiler/Metal output) as a hardware file."""
    host = probe(tmp_path, env={}, system_name="darwin", run=fake_runner(folder))
    hw = host.hardware
    # The recordings hold the Mac's sysctl/system_profiler/Metal output; its OS fields and
    # free memory would be this test host's, so they are set to the Mac's: macOS on arm64,
    # all of its memory free.
    macos = dataclasses.replace(hw.os, system="Darwin", machine="arm64", container=False)
    gpus = tuple(dataclasses.replace(g, memory_free_bytes=ram) for g in hw.gpus)
    hw = dataclasses.replace(
        hw,
        gpus=gpus,
        os=macos,
        cpu=dataclasses.replace(hw.cpu, arch="arm64"),
        memory=Memory(total_bytes=ram, available_bytes=ram),
    )
    path = tmp_path / "mac.json"
    path.write_text(json.dumps(to_jsonable(hw)))
    return path


def _check(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["check", *args, "--json", "--ram-bandwidth", "off"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_mlx_precisions_are_typed_as_users_write_them() -> None:
    for text, name in (
        ("mlx-4bit", "mlx-4bit"),
        ("MLX-8bit", "mlx-8bit"),
        ("mlx-3BIT", "mlx-3bit"),
    ):
        found = lookup(text)
        assert found is not None
        assert found.name == name
    # 16-bit scale + 16-bit bias per group of 64 weights = +0.5 bit.
    assert MLX_BPW == {"mlx-3bit": 3.5, "mlx-4bit": 4.5, "mlx-6bit": 6.5, "mlx-8bit": 8.5}


def test_llama_31_8b_mlx_4bit_is_on_the_gpu_of_a_16gb_m1(tmp_path: Path) -> None:
    path = _mac("apple-m1-16gb", tmp_path, 16 * GIB)
    row = _check("llama 3.1 8b", "-p", "mlx-4bit", "--hardware", str(path))["results"][0]
    assert (row["verdict"], row["framework"]) == ("gpu", "mlx-lm")
    # The formula gives the mlx-community file's size (4.52 GB, tests/reference/mlx.toml).
    assert row["memory"]["weights_bytes"] == pytest.approx(4.52e9, rel=0.01)
    assert any("via mlx" in r for r in row["reasons"])


def test_llama_3_70b_mlx_4bit_on_a_64gb_m2_max_follows_the_arithmetic(tmp_path: Path) -> None:
    path = _mac("apple-m2-max-64gb", tmp_path, 64 * GIB)
    data = _check("llama 3 70b", "-p", "mlx-4bit", "--hardware", str(path))
    row = data["results"][0]
    (gpu,) = data["hardware"]["gpus"]
    mem = row["memory"]
    # 70.6 B params x 4.5 bits = 39.7 GB of weights; the KV cache at 4,096 tokens:
    # 80 layers x 2 x 8 KV heads x 128 x 2 B per token.
    assert mem["weights_bytes"] == pytest.approx(39.69e9, rel=0.005)
    assert mem["kv_cache_bytes"] == 80 * 2 * 8 * 128 * 2 * 4096
    budget = gpu["memory_free_bytes"] - max(256 * 2**20, round(gpu["memory_total_bytes"] * 0.05))
    expected = "gpu" if mem["gpu_bytes"] and mem["gpu_bytes"] <= budget else "too-big"
    assert row["verdict"] == expected == "gpu"  # ~39 GiB within Metal's ~48 GiB working set


def test_the_same_70b_does_not_fit_a_16gb_m1(tmp_path: Path) -> None:
    path = _mac("apple-m1-16gb", tmp_path, 16 * GIB)
    row = _check("llama 3 70b", "-p", "mlx-4bit", "--hardware", str(path))["results"][0]
    assert row["verdict"] == "too-big"  # mlx-lm cannot spill to the CPU


def test_mlx_lm_is_offered_on_a_mac_without_the_model_listing_it() -> None:
    assert "mlx-lm" not in CATALOG.variant_by_id["llama-3.1-8b"].model.frameworks
    rows = _check("llama 3.1 8b", "--gpu", "M3 Max")["results"]
    assert any(r["framework"] == "mlx-lm" for r in rows)
    assert {r["precision"] for r in rows if r["framework"] == "mlx-lm"} >= {"mlx-4bit", "mlx-8bit"}


@pytest.mark.parametrize("gpu", ["H100", "RTX 4090", "Jetson AGX Orin 64GB"])
def test_mlx_lm_never_appears_off_a_mac(gpu: str) -> None:
    rows = _check("llama 3.1 8b", "--gpu", gpu)["results"]
    assert rows
    for r in rows:
        assert r["framework"] != "mlx-lm"
        assert "mlx-lm" not in r["frameworks"]
        assert not (r["precision"] or "").startswith("mlx-")


def test_mlx_lm_on_this_linux_host_is_not_available() -> None:
    result = runner.invoke(app, ["check", "llama 3.1 8b", "-p", "mlx-4bit", "--json"])
    row = json.loads(result.output)["results"][0]
    assert row["verdict"] == "unsupported"


def test_models_of_an_unimplemented_arch_do_not_get_mlx_lm() -> None:
    impl = MLX_LM.implements
    assert impl is not None
    for absent in ("bloom", "falcon", "mpt"):
        assert absent not in impl.archs


def test_the_arch_table_is_validated() -> None:
    base = {"archs": {"llama": "llama"}, "source": "x", "commit": "0" * 40, "checked": "2026-12-01"}
    validated(Implements, base)
    with pytest.raises(ValidationError):
        validated(Implements, {**base, "windowed": ["gemma3"]})  # not an implemented arch
    with pytest.raises(ValidationError):
        validated(Implements, {**base, "models_folder": "mlx_lm/models"})  # extra="forbid"
    with pytest.raises(ValidationError):
        validated(Implements, {**base, "commit": "main"})


def _arch(variant_id: str):  # type: ignore[no-untyped-def]
    arch = CATALOG.variant_by_id[variant_id].variant.arch
    assert arch is not None
    return arch


def _variant_with(gguf_arch: str, windowed: bool) -> str:
    for vid, ref in CATALOG.variant_by_id.items():
        a = ref.variant.arch
        if a is not None and a.gguf_arch == gguf_arch and (a.local_layers > 0) == windowed:
            return vid
    pytest.skip(f"no {gguf_arch} variant in the catalog")


def test_gemma3_keeps_only_the_window_but_gemma2_caches_everything() -> None:
    g3 = _arch(_variant_with("gemma3", True))
    full3 = 2 * g3.kv_heads * g3.effective_head_dim * 2 * g3.layers * 32768
    assert mlx.kv_cache_bytes(MLX_LM, g3, 32768) < full3 / 2
    g2 = _arch(_variant_with("gemma2", True))
    full2 = 2 * g2.kv_heads * g2.effective_head_dim * 2 * g2.layers * 8192
    assert mlx.kv_cache_bytes(MLX_LM, g2, 8192) == full2  # gemma2.py has no make_cache


def test_deepseek_v3_caches_the_mla_latent() -> None:
    arch = _arch(_variant_with("deepseek2", False))
    assert mlx.kv_cache_bytes(MLX_LM, arch, 4096) == kv_cache_bytes(arch, 4096, runtime="vllm")
    # The catalog's deepseek2 models must be V3-family: DeepSeek-V2 (deepseek_v2.py)
    # caches the expanded keys and values, which latent_kv would under-count.
    for vid, ref in CATALOG.variant_by_id.items():
        a = ref.variant.arch
        if a is not None and a.gguf_arch == "deepseek2":
            assert "v2" not in vid, vid


def test_the_cache_grows_in_steps_of_256_tokens() -> None:
    arch = _arch("llama-3.1-8b")
    per_token = 2 * arch.kv_heads * arch.effective_head_dim * 2 * arch.layers
    assert mlx.kv_cache_bytes(MLX_LM, arch, 1000) == per_token * 1024


def test_head_dims_without_a_fused_kernel_pay_for_the_scores() -> None:
    from canirun.estimate.results import Workload

    fused = mlx.overheads(MLX_LM, _arch("llama-3.1-8b"), Workload(context_tokens=8192))
    assert not any("attention scores" in line for line in fused.lines)
    g3 = _arch(_variant_with("gemma3", True))
    assert g3.effective_head_dim not in mlx.FUSED_HEAD_DIMS
    unfused = mlx.overheads(MLX_LM, g3, Workload(context_tokens=8192))
    assert any("attention scores" in line for line in unfused.lines)
    assert unfused.gpu_compute >= 2048 * 8192 * g3.heads * 4


def test_mlx_lms_own_slowness_warning_at_90_percent_of_the_working_set() -> None:
    assert mlx.wired_warning(9 * GIB, 10 * GIB) is None
    line = mlx.wired_warning(int(9.5 * GIB), 10 * GIB)
    assert line is not None
    assert "This can be slow" in line
    assert mlx.wired_warning(9 * GIB, None) is None


def test_an_apple_what_if_is_a_mac_and_lists_mlx_lm() -> None:
    data = _check("llama 3.1 8b", "-p", "mlx-4bit", "--gpu", "M3 Max")
    os_info = data["hardware"]["os"]
    assert (os_info["system"], os_info["machine"]) == ("Darwin", "arm64")
    assert any("an Apple GPU is in a Mac" in a for a in data["hardware"]["assumed"])
    result = runner.invoke(app, ["frameworks", "--gpu", "M3 Max"])
    assert result.exit_code == 0, result.output
    block = result.output.split("MLX LM (mlx-lm)")[1].splitlines()[0]
    assert "runs here" in block


def test_an_nvidia_what_if_keeps_this_hosts_os() -> None:
    data = _check("llama 3.1 8b", "-p", "Q4_K_M", "--gpu", "RTX 4090")
    assert data["hardware"]["os"]["system"] != "Darwin"
