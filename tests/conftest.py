"""Shared fixtures: the seams where hardware is faked (NVML, /proc and cgroup trees)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from canirun.catalog import load_catalog
from canirun.catalog.compiled import shipped_detect_specs
from canirun.hardware import nvidia, software
from tests.fakes.fake_nvml import FakeNvml

DATA = Path(__file__).parent / "data"


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch):
    """Install a fake NVML at the one place canirun imports pynvml; returns a setter."""

    def install(nvml: FakeNvml) -> FakeNvml:
        monkeypatch.setattr(nvidia, "load_nvml", lambda: nvml)
        return nvml

    return install


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's own user catalog, caches or HF cache settings."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # The RAM bandwidth kept per machine (hardware.bandwidth_cache) and the header cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    # Commands run in one process: many tests watch the rating through functions they
    # patch, which a forked worker's calls would pass by. tests/test_fanout.py runs the
    # workers and compares what they answer with this.
    monkeypatch.setenv("CANIRUN_WORKERS", "1")
    load_catalog.cache_clear()  # the user catalog dir differs per test


def _path_without_frameworks(path: str) -> str:
    """PATH minus every folder holding a framework's command (ollama, vllm, llama-server...)."""
    commands = {c for _, cmds, _ in shipped_detect_specs() for c in cmds}
    kept = [
        folder
        for folder in path.split(os.pathsep)
        if folder and not any((Path(folder) / c).exists() for c in commands)
    ]
    return os.pathsep.join(kept)


@pytest.fixture(autouse=True)
def installed_packages(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """What the machine running the tests has installed never changes an answer: framework
    commands are taken off PATH, and Python distributions count as installed only when a
    test adds them to the returned set."""
    monkeypatch.setenv("PATH", _path_without_frameworks(os.environ.get("PATH", "")))
    present: set[str] = set()
    monkeypatch.setattr(software, "_has_distribution", lambda name, installed: name in present)
    return present
