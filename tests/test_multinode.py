"""Multi-node placement: vLLM's rules as pure functions, then through the CLI.

Reference cases: vLLM's docs ("tensor_parallel_size 8 and pipeline_parallel_size 2
when using 2 nodes with 8 GPUs per node"), its source (``get_pp_indices``, the
head and KV-head divisibility checks), and the worked shapes in
shared/research/cluster.md (Falcon 180B: 232 heads, so never TP 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from canirun.cli import app
from canirun.estimate import multinode as mn

GIB = 2**30
runner = CliRunner()


@pytest.mark.parametrize(
    ("heads", "kv_heads", "limit", "sizes"),
    [
        (128, 8, 16, (1, 2, 4, 8, 16)),  # Llama 3.1 405B
        (232, 8, 16, (1, 2, 4, 8)),  # Falcon 180B: 232 = 8 x 29
        (112, 112, 16, (1, 2, 4, 7, 8, 14, 16)),  # BLOOM 176B, multi-head attention
        (64, 8, 8, (1, 2, 4, 8)),  # Llama 3 70B
        (40, 8, 8, (1, 2, 4, 8)),  # Qwen2.5 14B
        (28, 4, 8, (1, 2, 4)),  # Qwen2.5 7B: 28 heads do not divide by 8
    ],
)
def test_tensor_sizes_follow_the_head_rules(
    heads: int, kv_heads: int, limit: int, sizes: tuple[int, ...]
) -> None:
    assert mn.tensor_sizes(heads, kv_heads, limit) == sizes


@pytest.mark.parametrize(
    ("layers", "stages", "split"),
    [(80, 3, (27, 27, 26)), (70, 4, (17, 18, 18, 17)), (126, 2, (63, 63)), (61, 1, (61,))],
)
def test_stage_layers_match_vllm_get_pp_indices(
    layers: int, stages: int, split: tuple[int, ...]
) -> None:
    assert mn.stage_layers(layers, stages) == split


@given(st.integers(1, 200), st.integers(1, 16))
def test_stage_layers_cover_every_layer_once(layers: int, stages: int) -> None:
    split = mn.stage_layers(layers, stages)
    assert sum(split) == layers
    assert len(split) == stages
    assert max(split) - min(split) <= 1


def test_kv_heads_are_replicated_beyond_their_count() -> None:
    assert [mn.kv_heads_per_gpu(8, tp) for tp in (1, 2, 8, 16)] == [8, 4, 1, 1]


def _shape(pipeline_ok: bool | None = True, heads: int = 128) -> mn.ModelShape:
    # Roughly Llama 3.1 405B in bf16: 126 layers of 6 GiB.
    return mn.ModelShape(
        heads=heads,
        kv_heads=8,
        layer_bytes=(6 * GIB,) * 126,
        other_bytes=4 * GIB,
        kv_layer_bytes=16 * 2**20,
        per_gpu_bytes=4 * GIB,
        pipeline_ok=pipeline_ok,
    )


def _nodes(count: int, gpus: int = 8, budget: int = 70 * GIB) -> list[mn.NodeGpus]:
    return [mn.NodeGpus(f"n{i}", (budget,) * gpus) for i in range(count)]


def test_two_eight_gpu_nodes_give_tp8_pp2() -> None:
    layout = mn.plan(_shape(), _nodes(3))
    assert isinstance(layout, mn.Layout)
    assert (layout.tensor, layout.pipeline, len(layout.nodes)) == (8, 2, 2)
    assert layout.stage_layers == (63, 63)
    assert layout.per_gpu_bytes <= layout.budget_bytes


def test_too_small_a_cluster_says_how_many_gpus() -> None:
    found = mn.plan(_shape(), _nodes(1))
    assert isinstance(found, mn.Shortfall)
    assert any(
        "GPUs of this size are needed; the cluster has 8 in 1 node" in r for r in found.reasons
    )


def test_no_pipeline_support_keeps_the_model_on_one_node() -> None:
    found = mn.plan(_shape(pipeline_ok=False), _nodes(4))
    assert isinstance(found, mn.Shortfall)
    assert not found.unknown
    assert "no pipeline parallelism" in found.reasons[0]


def test_unknown_pipeline_support_is_unknown_not_a_fit() -> None:
    found = mn.plan(_shape(pipeline_ok=None), _nodes(4))
    assert isinstance(found, mn.Shortfall)
    assert found.unknown


def test_unknown_free_memory_is_unknown() -> None:
    nodes = [mn.NodeGpus("a", (None,) * 8), *_nodes(1)]
    found = mn.plan(_shape(), nodes)
    assert isinstance(found, mn.Shortfall)
    assert found.unknown


def test_falcon_heads_never_give_tp16_even_on_a_16_gpu_node() -> None:
    shape = _shape(heads=232)
    layout = mn.plan(shape, _nodes(1, gpus=16))
    assert isinstance(layout, mn.Layout)
    assert (layout.tensor, layout.pipeline) == (8, 2)


def test_per_gpu_need_never_below_an_even_share() -> None:
    shape = _shape()
    even = (sum(shape.layer_bytes) + shape.other_bytes) / 16 + shape.per_gpu_bytes
    assert mn.per_gpu_need(shape, 8, 2) >= even


def test_command_and_bundles() -> None:
    layout = mn.plan(_shape(), _nodes(2))
    assert isinstance(layout, mn.Layout)
    cmd = mn.vllm_command("meta-llama/Llama-3.1-405B", layout, 4096, 0.92)
    assert cmd == (
        "vllm serve meta-llama/Llama-3.1-405B --tensor-parallel-size 8 "
        "--pipeline-parallel-size 2 --distributed-executor-backend ray "
        "--max-model-len 4096 --gpu-memory-utilization 0.92"
    )
    assert mn.placement_bundles(layout) == ({"GPU": 1.0},) * 16


def _check(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["check", *args, "--ram-bandwidth", "off", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_405b_on_two_h100_nodes_is_vllms_documented_layout() -> None:
    data = _check("llama 3.1 405b", "--gpu", "8x H100 80GB", "--nodes", "2", "-p", "bf16")
    (result,) = data["results"]  # type: ignore[misc]
    assert result["verdict"] == "multi-node"
    par = result["parallel"]
    assert (par["tensor"], par["pipeline"], par["nodes"]) == (8, 2, 2)
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2" in par["command"]
    assert len(par["placement_bundles"]) == 16
    assert data["assumptions"]["cluster"]["source"] == "what-if"  # type: ignore[index]


def test_cli_one_node_is_too_small_and_says_what_is_missing() -> None:
    data = _check("llama 3.1 405b", "--gpu", "8x H100 80GB", "--nodes", "1", "-p", "bf16")
    (result,) = data["results"]  # type: ignore[misc]
    assert result["verdict"] == "too-big"
    assert any("GPUs of this size are needed" in r for r in result["reasons"])


def test_cli_single_node_tensor_parallel_carries_its_layout() -> None:
    data = _check("llama 3 70b", "--gpu", "4x A100 80GB", "-p", "bf16", "-f", "vllm")
    (result,) = data["results"]  # type: ignore[misc]
    assert result["verdict"] == "multi-gpu"
    assert result["parallel"]["tensor"] == len(result["gpus"]) == 2


def _node(folder: Path, name: str, gpu: str, count: int, memory: int) -> None:
    hw = {
        "cpu": {"logical_cores": 64, "arch": "x86_64"},
        "memory": {"total_bytes": 1024 * GIB},
        "gpus": [
            {
                "vendor": "nvidia",
                "name": gpu,
                "memory_total_bytes": memory,
                "compute_capability": "9.0",
                "index": i,
            }
            for i in range(count)
        ],
        "os": {"system": "Linux", "machine": "x86_64"},
    }
    (folder / f"{name}.json").write_text(
        json.dumps({"hardware": hw, "machine": {"hostname": name}})
    )


def test_cli_cluster_folder_uses_the_two_big_nodes(tmp_path: Path) -> None:
    _node(tmp_path, "gpu01", "NVIDIA H100 80GB HBM3", 8, 80 * GIB)
    _node(tmp_path, "gpu02", "NVIDIA H100 80GB HBM3", 8, 80 * GIB)
    _node(tmp_path, "gpu03", "NVIDIA L4", 2, 24 * GIB)
    data = _check("llama 3.1 405b", "--cluster", str(tmp_path), "-p", "bf16")
    (result,) = data["results"]  # type: ignore[misc]
    assert result["verdict"] == "multi-node"
    assert result["parallel"]["node_names"] == ["gpu01", "gpu02"]
    names = [n["name"] for n in data["assumptions"]["cluster"]["nodes"]]  # type: ignore[index]
    assert names == ["gpu01", "gpu02", "gpu03"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes: 0 is not between 1 and 1024"),
        (["--nodes", "2", "--cluster", "."], "--nodes and --cluster"),
        (["--cluster", "/nonexistent-canirun"], "--cluster /nonexistent-canirun: not a folder"),
    ],
)
def test_bad_cluster_flags_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["check", "llama", *args, "--ram-bandwidth", "off"])
    assert result.exit_code == 2
    assert message in result.stderr


def test_cluster_folder_without_reports_or_with_twins(tmp_path: Path) -> None:
    empty = runner.invoke(app, ["check", "llama", "--cluster", str(tmp_path)])
    assert empty.exit_code == 2
    assert "no .json or .toml reports" in empty.stderr
    _node(tmp_path, "a", "NVIDIA L4", 1, 24 * GIB)
    (tmp_path / "copy.json").write_text((tmp_path / "a.json").read_text())
    twins = runner.invoke(app, ["check", "llama", "--cluster", str(tmp_path)])
    assert twins.exit_code == 2
    assert "two reports for 'a'" in twins.stderr


def test_mla_latent_cache_is_replicated_on_every_tp_rank() -> None:
    short = _check("deepseek v3", "--gpu", "8x H100 80GB", "--nodes", "2", "-p", "fp8")
    long = _check(
        "deepseek v3", "--gpu", "8x H100 80GB", "--nodes", "2", "-p", "fp8", "--ctx", "65536"
    )
    (a,), (b,) = short["results"], long["results"]  # type: ignore[misc]
    assert a["verdict"] == b["verdict"] == "multi-node"
    # 70,272 B per token over 61 layers; a stage of 30-31 layers keeps its share whole
    # on each GPU: 16x the context adds at least 61,440 tokens x 70,272 B x 30/61.
    grown = b["parallel"]["per_gpu_bytes"] - a["parallel"]["per_gpu_bytes"]
    assert grown >= 61_440 * 70_272 * 30 // 61
