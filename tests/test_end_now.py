"""The console script ends at once after a command (entry.end_now), and only when nothing
is left for Python's shutdown to do but free memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
WORKSTATION = Path(__file__).resolve().parent / "data" / "workstation.json"

# The child says when the process ends through os._exit (shutdown skipped).
CHILD = """
import os, sys
real_exit = os._exit
os._exit = lambda code: (os.write(2, b"ended at once"), real_exit(code))
SETUP
from canirun.entry import main
sys.argv = ["canirun", *sys.argv[1:]]
raise SystemExit(main())
"""


def _run(args: list[str], setup: str = "", tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    if tmp is not None:
        env |= {"XDG_CONFIG_HOME": str(tmp / "config"), "XDG_CACHE_HOME": str(tmp / "cache")}
    child = CHILD.replace("SETUP", setup)
    return subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=env, check=False
    )


SCAN = ["scan", "--json", "--ram-bandwidth", "off", "--hardware", str(WORKSTATION)]


def test_a_command_ends_without_shutdown_and_writes_everything(tmp_path: Path) -> None:
    done = _run(SCAN, tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # every byte arrived (flushed before the end)
    assert report["results"]
    assert "ended at once" in done.stderr


def test_the_exit_code_of_bad_input_is_kept(tmp_path: Path) -> None:
    done = _run(["check", "zzzz-no-such-model", "--json"], tmp=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("canirun: error: ")
    assert "ended at once" in done.stderr


def test_an_atexit_callback_gets_a_normal_shutdown(tmp_path: Path) -> None:
    setup = "import atexit; atexit.register(lambda: os.write(2, b'callback ran'))"
    done = _run(["--version"], setup, tmp_path)
    assert done.returncode == 0
    assert "callback ran" in done.stderr
    assert "ended at once" not in done.stderr


def test_a_running_thread_gets_a_normal_shutdown(tmp_path: Path) -> None:
    setup = (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), "
        "os.write(2, b'thread finished'))).start()"
    )
    done = _run(["--version"], setup, tmp_path)
    assert done.returncode == 0
    assert "thread finished" in done.stderr
    assert "ended at once" not in done.stderr
