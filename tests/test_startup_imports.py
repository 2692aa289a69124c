"""What `canirun hardware` and `--version` import: no pydantic, no catalog schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")

CHILD = """
import json, sys
from canirun.cli import main
sys.argv = ["canirun", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("pydantic", "canirun.catalog.schema", "canirun.report") if m in sys.modules]
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
