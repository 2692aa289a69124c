"""`--ray`: a real Ray cluster on this machine, a head and three fake GPU nodes.

Each node's probe is pointed at its own hardware file through the node's
environment (``CANIRUN_NODE_HARDWARE``, the documented test seam), so the plan
sees two 8x H100 nodes and one 2x L4 node although every "node" is this machine.
The cluster starts once per session (about 6-15 s, 1.4 GB).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from canirun.cli import app
from canirun.hardware.ray_cluster import NODE_HARDWARE_ENV
from tests.test_multinode import _node

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

GIB = 2**30
NODES = [
    ("gpu01", "NVIDIA H100 80GB HBM3", 8, 80 * GIB),
    ("gpu02", "NVIDIA H100 80GB HBM3", 8, 80 * GIB),
    ("gpu03", "NVIDIA L4", 2, 24 * GIB),
]


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ray-nodes")
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        for name, gpu, count, memory in NODES:
            path = _node(folder, name, gpu, count, memory, "9.0" if "H100" in gpu else "8.9")
            cluster.add_node(num_cpus=1, num_gpus=count, env_vars={NODE_HARDWARE_ENV: str(path)})
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _check(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["check", *args, "--ram-bandwidth", "off", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_405b_over_the_ray_cluster_is_tp8_pp2_on_the_h100_nodes(ray_address: str) -> None:
    data = _check("llama 3.1 405b", "--ray", ray_address, "-p", "bf16")
    (result,) = data["results"]  # type: ignore[misc]
    assert result["verdict"] == "multi-node"
    par = result["parallel"]
    assert (par["tensor"], par["pipeline"]) == (8, 2)
    assert sorted(par["node_names"]) == ["gpu01", "gpu02"]
    assert "--pipeline-parallel-size 2 --distributed-executor-backend ray" in par["command"]
    cluster = data["assumptions"]["cluster"]  # type: ignore[index]
    assert cluster["source"] == "ray"
    gpus = {n["name"]: n["gpus"] for n in cluster["nodes"]}
    # every node answered, the GPU-less head included (probed for real)
    assert {k: v for k, v in gpus.items() if k.startswith("gpu")} == {
        "gpu01": 8,
        "gpu02": 8,
        "gpu03": 2,
    }
    assert len(gpus) == 4


def test_a_model_one_l4_node_holds_stays_single_node(ray_address: str) -> None:
    data = _check("llama 3 8b", "--ray", ray_address, "-p", "bf16", "-f", "vllm")
    (result,) = data["results"]  # type: ignore[misc]
    # the largest node is the machine rated: one H100 holds an 8B model
    assert result["verdict"] == "gpu"


def test_unreachable_ray_address_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(app, ["check", "llama", "--ray", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--ray 127.0.0.1:1: cannot connect to a Ray cluster" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ray_auto_without_a_cluster_says_so_in_canirun_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ray's own error (2.60) when `auto` finds no cluster; the session cluster above would
    # be found on this machine, so the connection itself is the seam here.
    def no_cluster(*args: object, **kwargs: object) -> None:
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to "
            "by setting `--address` flag or `RAY_ADDRESS` environment variable."
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    result = CliRunner().invoke(app, ["check", "llama", "--ray", "auto"])
    assert result.exit_code == 2
    assert "none is running here (start one with `ray start --head`" in result.stderr
    assert "--address" not in result.stderr
