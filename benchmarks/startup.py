"""Start-up budget: wall time of canirun commands against `python -c "import psutil"`.

    python benchmarks/startup.py [--runs 21]

Prints the median of each command over repeated runs, interleaved so that
machine noise hits all of them alike, and the ratio to the baseline. Budget
(issue 2): `canirun hardware --json` within 2.5x of the baseline. Run it in the
environment where canirun is installed (a regular `pip install .`; an editable
install adds import hooks that slow every start).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

BUDGET = 2.5


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    exe = shutil.which("canirun", path=os.path.dirname(sys.executable)) or "canirun"
    commands = {
        "python -c 'import psutil'": [sys.executable, "-c", "import psutil"],
        "canirun --version": [exe, "--version"],
        "canirun hardware --json": [exe, "hardware", "--json"],
        "canirun scan --json": [exe, "scan", "--json"],
    }
    for cmd in commands.values():  # warm the page cache and .pyc files
        _time(cmd)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            samples[name].append(_time(cmd))
    base = statistics.median(samples["python -c 'import psutil'"])
    print(f"{'command':<28} {'median':>9} {'vs baseline':>12}   ({args.runs} runs each)")
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"{name:<28} {med * 1000:8.1f}ms {med / base:11.2f}x")
    ratio = statistics.median(samples["canirun hardware --json"]) / base
    verdict = "within" if ratio <= BUDGET else "OVER"
    print(f"budget: canirun hardware --json {verdict} {BUDGET}x of the baseline ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
