"""Instructions executed by each budgeted command, counted by valgrind: a figure that noise
cannot move, for A/B comparisons on a shared machine.

    python benchmarks/instructions.py [--before PYTHON] [--jobs N] [--only TEXT]

Wall times on a shared VM drift by 20 % and more between minutes (benchmarks/startup.py
reads medians of interleaved runs, and even those disagree from one run to the next).
valgrind's callgrind counts the instructions a process executes, which is the same from one
run to the next within a fraction of a percent: a 5 % change shows as 5 %. It is not wall
time (the interpreter's imports and the rating run at different instructions per cycle),
so the budgets stay with benchmarks/startup.py; this script says whether a change made
the work smaller, and by how much. Each command runs about 50 times slower under
valgrind (a scan: about a minute). Needs `valgrind` on PATH; run it in the environment
where canirun is installed with a regular `pip install .`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE = ("-c", "import psutil")
COMMANDS: dict[str, tuple[str, ...]] = {
    "python -c 'import psutil'": BASE,
    "canirun --version": ("-m", "canirun", "--version"),
    "canirun hardware --json": ("-m", "canirun", "hardware", "--json"),
    "canirun scan --json --ram-bandwidth off": (
        "-m",
        "canirun",
        "scan",
        "--json",
        "--ram-bandwidth",
        "off",
    ),
    "canirun check llama --json --ram-bandwidth off": (
        "-m",
        "canirun",
        "check",
        "llama",
        "--json",
        "--ram-bandwidth",
        "off",
    ),
    "canirun frameworks": ("-m", "canirun", "frameworks"),
    "canirun frameworks --json": ("-m", "canirun", "frameworks", "--json"),
}
_COLLECTED = re.compile(r"Collected : (\d+)")


def count(python: str, args: tuple[str, ...]) -> int:
    """Instructions the interpreter executes for ``args`` (callgrind's "Collected")."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # One process: a forked rating worker (canirun.fanout) would be counted apart, and the
    # figure here is the work a command does, not how it is shared out.
    env["CANIRUN_WORKERS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(tmp) / 'out'}",
                python,
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            check=False,
        )
    found = _COLLECTED.search(run.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no count for {' '.join(args)}:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="PYTHON", help="also count another install's")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", metavar="TEXT", help="only the commands whose name has TEXT")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count", file=sys.stderr)
        return 2
    pythons = {"now": sys.executable, **({"before": args.before} if args.before else {})}
    names = [n for n in COMMANDS if n == next(iter(COMMANDS)) or (args.only or "") in n]
    jobs = [(label, name) for label in pythons for name in names]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        counts = dict(
            zip(
                jobs,
                pool.map(lambda job: count(pythons[job[0]], COMMANDS[job[1]]), jobs),
                strict=True,
            )
        )
    base = counts[("now", next(iter(COMMANDS)))]
    print(f"{'command':<50} {'instructions':>15} {'ratio':>7} {'before':>15} {'change':>8}")
    for name in names:
        now = counts[("now", name)]
        line = f"{name:<50} {now:>15,} {now / base:6.2f}x"
        if ("before", name) in counts:
            old = counts[("before", name)]
            line += f" {old:>15,} {(now - old) / old:+7.1%}"
        print(line)
    print("(ratios to the psutil import of this install's interpreter)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
