"""What `canirun hardware` and `--version` import: no pydantic, no catalog schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")
WORKSTATION = Path(__file__).resolve().parent / "data" / "workstation.json"

CHILD = """
import json, sys
from canirun.entry import main
sys.argv = ["canirun", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
HEAVY = ("pydantic", "canirun.catalog.schema", "canirun.report", "typer", "hashlib",
         "importlib.metadata", "importlib.resources")
heavy = [m for m in HEAVY if m in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--version"], ["hardware", "--json"]])
def test_fast_commands_do_not_import_pydantic(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    assert done.stdout.strip()


SHORT = """
import io, json, sys, contextlib
import canirun.hardware
from canirun import cli, entry
from pathlib import Path
fixed = canirun.hardware.load_host(Path(FIXTURE), None)
canirun.hardware.load_host = lambda *args, **kwargs: fixed  # the same machine both ways
out = {}
for name, run in (("short", entry.main), ("typer", cli.main)):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run(sys.argv[1:])
    out[name] = [code, buf.getvalue()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("args", [["--version"], ["hardware"], ["hardware", "--json"]])
def test_the_short_way_answers_as_typer_does(args: list[str], tmp_path: Path) -> None:
    """entry.main skips typer for exactly these argument lists: same text, same exit code
    (both ways see one fixed machine)."""
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CONFIG_HOME": str(tmp_path)}
    child = SHORT.replace("FIXTURE", repr(str(WORKSTATION)))
    done = subprocess.run(
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(done.stdout)
    assert out["short"][0] == out["typer"][0] == 0
    short, full = out["short"][1], out["typer"][1]
    if args == ["hardware", "--json"]:
        short, full = json.loads(short), json.loads(full)
        for report in (short, full):
            report.pop("created_at", None)  # written a moment apart
    assert short == full
    assert ("canirun " if args == ["--version"] else "RTX 4090") in out["short"][1]


def test_other_argument_lists_go_to_typer(capsys: pytest.CaptureFixture[str]) -> None:
    from canirun import entry

    assert ("hardware", "--output", "x") not in entry.SHORT_WAYS
    assert entry.main(["hardware", "--nope"]) == 2
    assert "--nope" in capsys.readouterr().err


def test_builtin_sha256_is_sha256() -> None:
    import hashlib

    from canirun.sha import sha256

    for data in (b"", b"abc", bytes(range(256)) * 999):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
