"""On a real NVIDIA machine: canirun's GPU figures against `nvidia-smi`.

Skipped where there is no nvidia-smi or no GPU. Run alone with `python -m pytest -m gpu`.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import pytest

from canirun.hardware.nvidia import probe_gpus

pytestmark = pytest.mark.gpu

FIELDS = "index,name,memory.total,memory.free,compute_cap,driver_version,uuid"


def _nvidia_smi() -> list[dict[str, str]]:
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no nvidia-smi on PATH")
    done = subprocess.run(
        ["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        pytest.skip(f"nvidia-smi found no GPU: {done.stderr.strip()}")
    rows = csv.reader(done.stdout.strip().splitlines(), skipinitialspace=True)
    return [dict(zip(FIELDS.split(","), row, strict=True)) for row in rows]


def test_canirun_agrees_with_nvidia_smi() -> None:
    smi = _nvidia_smi()
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    gpus, issues = probe_gpus(env=env)  # the real pynvml
    assert len(gpus) == len(smi), issues
    for gpu, row in zip(gpus, smi, strict=True):
        assert gpu.index == int(row["index"])
        assert gpu.name == row["name"]
        assert gpu.uuid == row["uuid"]
        assert gpu.memory_total_bytes is not None
        assert gpu.memory_total_bytes // 2**20 == int(row["memory.total"])
        assert gpu.memory_free_bytes is not None
        free_mib = gpu.memory_free_bytes / 2**20
        assert free_mib == pytest.approx(int(row["memory.free"]), rel=0.05, abs=256)
        assert gpu.compute_capability == row["compute_cap"]
        assert gpu.driver_version == row["driver_version"]
        assert gpu.memory_bandwidth_bytes_per_s, "bus width x memory clock should be readable"
