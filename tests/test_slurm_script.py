"""scripts/slurm-probe.sh end to end with a stand-in `srun` (no Slurm here).

The stand-in does what srun does for this script: runs the command once per node
of the "allocation" with that node's stdout in --output, %N expanded. Each node
answers from its own hardware file (the same seam as the Ray tests), and the
folder then plans a multi-node layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from canirun.cli import app
from tests.test_multinode import _node

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-probe.sh"
FAKE_SRUN = """#!{python}
import os, subprocess, sys
args = sys.argv[1:]
output = next(a.split("=", 1)[1] for a in args if a.startswith("--output="))
first = next(i for i, a in enumerate(args) if not a.startswith("--"))
command = args[first:]
for node in os.environ["FAKE_NODES"].split(","):
    env = dict(os.environ, CANIRUN_HARDWARE_FOR_TEST=os.environ["FAKE_DIR"] + "/" + node + ".json")
    with open(output.replace("%N", node), "w") as out:
        subprocess.run(
            [sys.executable, "-m", "canirun", *command[1:], "--hardware",
             env["CANIRUN_HARDWARE_FOR_TEST"]],
            stdout=out, check=True, env=env,
        )
"""


def test_slurm_script_gives_one_report_per_node_and_a_plan(tmp_path: Path) -> None:
    fixtures, bin_dir, reports = tmp_path / "fx", tmp_path / "bin", tmp_path / "reports"
    fixtures.mkdir()
    bin_dir.mkdir()
    for name in ("gpu01", "gpu02"):
        _node(fixtures, name, "NVIDIA H100 80GB HBM3", 8, 80 * 2**30)
    srun = bin_dir / "srun"
    srun.write_text(FAKE_SRUN.format(python=sys.executable))
    srun.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        FAKE_NODES="gpu01,gpu02",
        FAKE_DIR=str(fixtures),
    )
    subprocess.run(["bash", str(SCRIPT), str(reports)], env=env, check=True, capture_output=True)
    assert sorted(p.name for p in reports.iterdir()) == ["gpu01.json", "gpu02.json"]
    assert json.loads((reports / "gpu01.json").read_text())["kind"] == "hardware"
    result = CliRunner().invoke(
        app,
        ["check", "llama 3.1 405b", "--cluster", str(reports), "-p", "bf16", "--json",
         "--ram-bandwidth", "off"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["results"]
    assert (row["verdict"], row["parallel"]["tensor"], row["parallel"]["pipeline"]) == (
        "multi-node",
        8,
        2,
    )
