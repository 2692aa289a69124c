"""Installed frameworks belong to the machine a record describes (issue 15, item 2).

The probe looks for them and stores them in ``hardware.software``; a hardware
file is read back as it is, so what happens to be installed on the machine
running canirun never changes the answer about another machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.catalog import load_catalog
from canirun.catalog.loader import shipped_detect_specs
from canirun.cli import app
from canirun.hardware import probe
from tests.test_cli_commands import WORKSTATION

runner = CliRunner()


@pytest.fixture
def fake_ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "ollama"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_light_detect_specs_equal_the_validated_catalog() -> None:
    catalog = load_catalog(user_dir=False)
    full = [(f.id, list(f.detect.commands), list(f.detect.python)) for f in catalog.frameworks]
    assert sorted(shipped_detect_specs()) == sorted(full)


@pytest.mark.usefixtures("fake_ollama")
def test_the_probe_records_what_is_installed() -> None:
    host = probe(detect=shipped_detect_specs())
    assert host.hardware.software.frameworks is not None
    assert "ollama" in host.hardware.software.frameworks
    assert probe().hardware.software.frameworks is None  # not asked: not looked for


@pytest.mark.usefixtures("fake_ollama")
def test_a_hardware_file_is_not_judged_by_this_machines_path(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps(WORKSTATION))
    result = runner.invoke(
        app, ["check", "llama3:8b", "--hardware", str(other), "--ram-bandwidth", "off", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["assumptions"]["frameworks_installed"] == []


def test_a_hardware_file_keeps_its_own_frameworks(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**WORKSTATION, "software": {"frameworks": ["vllm"]}}))
    result = runner.invoke(
        app, ["check", "llama3:8b", "--hardware", str(other), "--ram-bandwidth", "off", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["assumptions"]["frameworks_installed"] == ["vllm"]


@pytest.mark.usefixtures("fake_ollama")
def test_hardware_json_carries_the_frameworks_of_this_machine() -> None:
    result = runner.invoke(app, ["hardware", "--json"])
    assert result.exit_code == 0, result.output
    assert "ollama" in json.loads(result.stdout)["hardware"]["software"]["frameworks"]


def test_the_test_machine_has_no_frameworks_unless_a_test_says(
    installed_packages: set[str],
) -> None:
    specs = shipped_detect_specs()
    assert probe(detect=specs).hardware.software.frameworks == ()
    vllm_dists = next(dists for fid, _, dists in specs if fid == "vllm")
    installed_packages.add(vllm_dists[0])
    assert probe(detect=specs).hardware.software.frameworks == ("vllm",)


def test_installed_distributions_are_what_importlib_metadata_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-listing scan stands in for importlib.metadata (start-up time): the same
    names on this interpreter's sys.path, and on a made-up one with both metadata kinds, a
    zip entry and a folder this user cannot list."""
    import sys
    from importlib import metadata

    from canirun.hardware.software import installed_distributions, normalise

    theirs = {normalise(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}
    assert installed_distributions() == theirs
    assert "pydantic" in theirs

    site = tmp_path / "site"
    for folder in ("Llama_CPP_Python-0.3.36.dist-info", "openai_whisper-2025.1.egg-info"):
        (site / folder).mkdir(parents=True)
        (site / folder / ("METADATA" if "dist" in folder else "PKG-INFO")).write_text(
            f"Metadata-Version: 2.1\nName: {folder.split('-')[0]}\nVersion: 1\n"
        )
    (site / "not_a_distribution.py").write_text("")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    monkeypatch.setattr(sys, "path", [str(site), str(tmp_path / "lib.zip"), str(locked)])
    found = installed_distributions()
    assert found == {"llama-cpp-python", "openai-whisper"}
    assert found == {normalise(d.metadata["Name"]) for d in metadata.distributions()}
