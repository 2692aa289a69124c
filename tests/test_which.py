"""canirun.hardware.which answers as shutil.which does, on the PATHs people have."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from canirun.hardware.which import which

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Windows asks shutil itself")


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """bin/: runnable tool, plain file, folder named tool; other/: runnable tool and a link."""
    made = {name: tmp_path / name for name in ("bin", "other", "empty", "cwd")}
    for folder in made.values():
        folder.mkdir()
    (made["bin"] / "tool").write_text("#!/bin/sh\n")
    (made["bin"] / "tool").chmod(0o755)
    (made["bin"] / "plain").write_text("not runnable\n")
    (made["bin"] / "dir-tool").mkdir()
    for name in ("plain", "dir-tool", "tool", "linked"):
        target = made["other"] / name
        if name == "linked":
            target.symlink_to(made["bin"] / "tool")
        else:
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
    (made["cwd"] / "here").write_text("#!/bin/sh\n")
    (made["cwd"] / "here").chmod(0o755)
    monkeypatch.chdir(made["cwd"])
    return made


def _paths(f: dict[str, Path]) -> list[str | None]:
    b, o, e = str(f["bin"]), str(f["other"]), str(f["empty"])
    return [
        f"{b}:{o}",
        f"{o}:{b}",
        f"{e}:{b}:{b}:{o}",
        f"{b}/:{o}",
        f"{e}::{o}",  # an empty entry: the current folder
        ":",
        "",
        None,  # unset: the system's default path
        f"{e}:{Path(b).name}",  # a relative entry
        f"{e}:/no/such/folder:{o}",
    ]


NAMES = ["tool", "plain", "dir-tool", "linked", "here", "sh", "no-such-command-here"]


@pytest.mark.parametrize("case", range(10))
def test_same_answer_as_shutil(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch, case: int
) -> None:
    path = _paths(folders)[case]
    if path is None:
        monkeypatch.delenv("PATH", raising=False)
    else:
        monkeypatch.setenv("PATH", path)
    monkeypatch.chdir(folders["cwd"].parent if case == 8 else folders["cwd"])
    answers = {name: which(name) for name in NAMES}
    assert answers == {name: shutil.which(name) for name in NAMES}
    if case == 0:  # what each name is, spelt out once
        b, o = str(folders["bin"]), str(folders["other"])
        assert answers == {
            "tool": os.path.join(b, "tool"),
            "plain": os.path.join(o, "plain"),  # bin's is not executable
            "dir-tool": os.path.join(o, "dir-tool"),  # bin's is a folder
            "linked": os.path.join(o, "linked"),
            "here": None,  # the current folder is not on this PATH
            "sh": None,
            "no-such-command-here": None,
        }
    if case == 4:
        assert answers["here"] == "here"  # the empty entry


def test_a_name_with_a_folder_is_shutils_answer(folders: dict[str, Path]) -> None:
    for name in ("./here", str(folders["bin"] / "tool"), str(folders["bin"] / "plain")):
        assert which(name) == shutil.which(name)
