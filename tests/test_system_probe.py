"""The system probe on this real machine, and its pieces against fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from canirun.hardware import probe
from canirun.hardware.system import (
    default_models_dir,
    detect_container,
    hash_machine_id,
    probe_disk,
    probe_docker,
    probe_machine,
)
from tests.fakes.fake_nvml import FakeGpu, FakeNvml


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == key:
            return int(rest.split()[0])
    raise KeyError(key)


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs Linux /proc")
def test_real_probe_agrees_with_proc_meminfo_and_cpu_count() -> None:
    host = probe(nvml=FakeNvml())
    memory, cpu = host.hardware.memory, host.hardware.cpu
    assert memory.total_bytes == _meminfo_kib("MemTotal") * 1024
    assert memory.swap_total_bytes == _meminfo_kib("SwapTotal") * 1024
    available = _meminfo_kib("MemAvailable") * 1024
    assert memory.available_bytes is not None
    assert abs(memory.available_bytes - available) < 512 * 2**20  # other processes move it
    assert cpu.logical_cores == os.cpu_count()
    assert cpu.usable_cores is not None
    assert 0 < cpu.usable_cores <= (os.cpu_count() or 1)
    assert cpu.flags is not None
    assert host.hardware.os.system == "Linux"
    assert host.hardware.os.python_version == "{}.{}.{}".format(*sys.version_info[:3])


def test_probe_with_a_fake_gpu_keeps_everything_else() -> None:
    host = probe(nvml=FakeNvml([FakeGpu()]), env={})
    assert [g.name for g in host.hardware.gpus] == ["NVIDIA GeForce RTX 4090"]
    assert host.hardware.memory.total_bytes


def test_disk_of_a_missing_folder_is_measured_at_its_nearest_parent(tmp_path: Path) -> None:
    issues: list = []
    disk = probe_disk(tmp_path / "not" / "yet", issues)
    assert disk.exists is False
    assert disk.measured_path == str(tmp_path)
    assert disk.free_bytes is not None
    assert issues == []
    existing = probe_disk(tmp_path, issues)
    assert existing.exists is True


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HF_HUB_CACHE": "/data/hub"}, "/data/hub"),
        ({"HF_HOME": "/data/hf"}, "/data/hf/hub"),
        ({"XDG_CACHE_HOME": "/c"}, "/c/huggingface/hub"),
        ({"HF_HUB_CACHE": "/a", "HF_HOME": "/b"}, "/a"),
    ],
)
def test_models_dir_follows_hugging_face_rules(env: dict[str, str], expected: str) -> None:
    assert default_models_dir(env) == Path(expected)


def test_models_dir_default_is_under_home() -> None:
    assert default_models_dir({}) == Path("~/.cache/huggingface/hub").expanduser()


def test_container_detection(tmp_path: Path) -> None:
    assert detect_container(tmp_path, {}) == (False, None)
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/kubepods/burstable/pod1/abc\n")
    assert detect_container(tmp_path, {}) == (True, "kubernetes")
    (tmp_path / ".dockerenv").write_text("")
    assert detect_container(tmp_path, {}) == (True, "docker")


def test_machine_id_is_hashed_and_stable(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    raw = "0123456789abcdef0123456789abcdef"
    (tmp_path / "etc/machine-id").write_text(raw + "\n")
    machine = probe_machine(tmp_path, [])
    assert machine.id == hash_machine_id(raw)
    assert machine.id is not None
    assert raw not in machine.id
    assert len(machine.id) == 32


def test_missing_machine_id_is_an_info_issue(tmp_path: Path) -> None:
    issues: list = []
    assert probe_machine(tmp_path, issues).id is None
    assert issues[0].severity == "info"


def test_docker_without_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    docker = probe_docker({})
    assert docker.cli is False
    assert docker.usable is False


def test_docker_remote_host_is_not_contacted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    docker = probe_docker({"DOCKER_HOST": "tcp://10.0.0.1:2375"})
    assert docker.cli is True
    assert docker.daemon is None
    assert docker.usable is None


def test_docker_socket_that_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    stale = tmp_path / "docker.sock"
    stale.write_text("")  # a file, not a listening socket
    docker = probe_docker({"DOCKER_HOST": f"unix://{stale}"})
    assert docker.daemon is False
    assert docker.usable is False
