"""Shared fixtures: the seams where hardware is faked (NVML, /proc and cgroup trees)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canirun.catalog import load_catalog
from canirun.hardware import nvidia
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
    """Tests never read the developer's own user catalog or HF cache settings."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    load_catalog.cache_clear()  # the user catalog dir differs per test
