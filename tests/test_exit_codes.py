"""Exit codes and messages as documented (issue 10, items 5 and 7).

Usage errors are one line (click prints four), a closed or full stdout and a
closed stderr end with the documented codes, and --help/--version into a
closed pipe end quietly. Most cases run in this process through ``main()``;
the few that need a real closed descriptor run a subprocess.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from canirun import cli

HARDWARE = Path(__file__).parent / "data" / "workstation.json"
SRC = Path(__file__).resolve().parent.parent / "src"

USAGE_ERRORS = [
    ["scan", "--nope"],
    ["check"],
    ["check", "llama", "--ctx", "abc"],
    ["check", "llama", "--ctx"],
    ["check", "llama", "--min-tps", "fast"],
    ["check", "llama", "--min-tps", "1e"],
    ["nonsense"],
    ["fleet"],
    ["list", "extra-argument"],
    ["scan", "--json=yes"],
    ["check", "llama", "--sequences", "9" * 5000],
    ["--nope"],
    ["scan", "-x"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS)
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """13 usage errors: exit 2 and one line on stderr that says where to look."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("canirun: error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert "--help" in captured.err
    assert "Usage:" not in captured.err


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "Usage: canirun" in err
    assert "scan" in err


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--version"], 0),
        (["--help"], 0),
        (["scan", "--help"], 0),
        (["check", "nosuchmodelanywhere", "--hardware", str(HARDWARE)], 2),
        (["check", "llama3:8b", "--hardware", str(HARDWARE), "--require", "gpu"], 0),
        (["check", "llama3:8b", "--hardware", str(HARDWARE), "--min-tps", "100000"], 1),
    ],
)
def test_documented_codes(argv: list[str], code: int) -> None:
    """6 cases: the codes in the README's table."""
    assert cli.main(argv) == code


class _Broken(io.TextIOBase):
    """A stdout whose writes fail the way a given errno makes them fail."""

    def __init__(self, error: int | None) -> None:
        self.error = error

    def write(self, text: str) -> int:
        if self.error == errno.EPIPE:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        if self.error is None:
            raise ValueError("I/O operation on closed file.")
        raise OSError(self.error, os.strerror(self.error))

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


COMMANDS = [
    ["hardware"],
    ["hardware", "--json"],
    ["check", "llama3:8b", "--hardware", str(HARDWARE)],
    ["check", "whisper", "--hardware", str(HARDWARE), "--format", "markdown"],
    ["list"],
    ["gpus", "--json"],
    ["list", "--json", "--category", "speech"],
    ["schema"],
    ["--version"],
]


@pytest.mark.parametrize(
    ("error", "code"),
    [(errno.EPIPE, 141), (None, 141), (errno.ENOSPC, 2), (errno.EIO, 2), (errno.EBADF, 141)],
)
@pytest.mark.parametrize("argv", COMMANDS)
def test_stdout_that_cannot_be_written(
    argv: list[str],
    error: int | None,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """45 cases: a reader gone or stdout closed is 141, quietly; a full disk is one line, 2."""
    monkeypatch.setattr(sys, "stdout", _Broken(error))
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    if code == 141:
        assert err == ""
    else:
        assert err.startswith("canirun: error: cannot write to standard output: ")
        assert err.count("\n") == 1


@pytest.mark.parametrize("argv", COMMANDS[:4])
def test_stdout_missing_entirely(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """4 cases: Python sets sys.stdout to None when started with descriptor 1 closed."""
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main(argv) == 141


def test_stderr_missing_entirely(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad input with no stderr at all still ends with exit 2, never a traceback."""
    monkeypatch.setattr(sys, "stderr", None)
    assert cli.main(["check", "llama3:8b", "--hardware", "/nonexistent.json"]) == 2
    assert cli.main(["scan", "--nope"]) == 2


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "canirun", *args], env=env, check=False, timeout=60, **kwargs
    )


def _closed_pipe(args: list[str]) -> tuple[int, bytes]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "canirun", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read()
    return proc.wait(timeout=60), err


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["scan", "--help"],
        ["--version"],
        ["check", "llama3:8b", "--hardware", str(HARDWARE)],
    ],
)
def test_a_closed_pipe_is_141_quietly(args: list[str]) -> None:
    """4 real processes: `canirun --help | true` and friends."""
    code, err = _closed_pipe(args)
    assert code == 141, err
    assert err == b""


def test_started_with_stdout_closed() -> None:
    """`canirun check ... >&-`."""
    done = _run(
        ["check", "llama3:8b", "--hardware", str(HARDWARE)],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
    )
    assert done.returncode == 141
    assert b"Traceback" not in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_disk() -> None:
    """`canirun check ... >/dev/full`: one line, exit 2 (Python's final flush made it 120)."""
    with open("/dev/full", "wb") as full:
        done = _run(
            ["check", "llama3:8b", "--hardware", str(HARDWARE)], stdout=full, stderr=subprocess.PIPE
        )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "canirun: error: cannot write to standard output: No space left on device"
    ]


def test_started_with_stderr_closed() -> None:
    """`canirun check nosuchfile 2>&-`: the line is lost, the code is not."""
    done = _run(
        ["check", "llama3:8b", "--hardware", "/nonexistent.json"],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: os.close(2),
    )
    assert done.returncode == 2
    assert done.stdout == b""
