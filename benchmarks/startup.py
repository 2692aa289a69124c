"""Start-up and whole-command budgets against `python -c "import psutil"`, today and doubled.

    python benchmarks/startup.py [--runs 11] [--no-doubled]

Prints, for each command, the median wall time over repeated runs (interleaved, so
that machine noise hits all of them alike), its ratio to the baseline, and the
median CPU time (user + system) of the child, which stays meaningful on a busy
machine. "doubled" rows run a copy of the installed package whose shipped catalog
holds every model twice (benchmarks/doubled.py). Then the rating itself: milliseconds
per rated result, wall and CPU (the workers' included), shared out to workers as the
command line does it (canirun.fanout; `CANIRUN_WORKERS=1` for one process) and, for
comparison, in one process. Budgets (issue 15) are printed with a
verdict. Run it in the environment where canirun is installed with a regular
`pip install .` (an editable install adds import hooks that slow every start).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import doubled  # benchmarks/ is not a package

BASE = "python -c 'import psutil'"
# command label -> budget (x the baseline's median wall time)
BUDGETS = {
    "canirun --version": 2.0,
    "canirun hardware --json": 2.5,
    "canirun scan --json --ram-bandwidth off": 6.0,
    "canirun check llama --json --ram-bandwidth off": 5.0,
    "canirun frameworks": 3.0,
    "canirun frameworks --json": 3.0,  # the issue names `frameworks`: its JSON is held to it too
    "doubled: canirun scan --json --ram-bandwidth off": 8.0,
}
RATE_BUDGET_MS = 0.1  # per rated result

RATE_CHILD = """
import gc, json, resource, sys, time
gc.disable()  # as the console script runs (canirun.entry)
if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[2])
from canirun.catalog.loader import load_catalog
from canirun.evaluate import machine_capacity, rate_all
from canirun.estimate.rate import Options
from canirun.hardware.model import Gpu, Hardware, Host, Memory
try:  # the rating shared out to workers as the command line does it (issue 15)
    from canirun.fanout import usable_workers
    workers = usable_workers() if sys.argv[1] == "cli" else 1
    extra = {"workers": workers}
except ImportError:  # an install from before canirun.fanout: one process
    workers, extra = 1, {}
catalog = load_catalog(user_dir=False)
host = Host(Hardware(memory=Memory(total_bytes=64 * 2**30, available_bytes=64 * 2**30),
                     gpus=(Gpu("nvidia", "NVIDIA GeForce RTX 4090", 24 * 2**30, index=0,
                               memory_free_bytes=24 * 2**30),)))
cap = machine_capacity(host, catalog)
usage = lambda: resource.getrusage(resource.RUSAGE_CHILDREN)
t, c, w = time.perf_counter(), time.process_time(), usage()
rated = rate_all(catalog.variants(), catalog, cap, Options(), **extra)
took, cpu = time.perf_counter() - t, time.process_time() - c
done = usage()
cpu += done.ru_utime - w.ru_utime + done.ru_stime - w.ru_stime  # the workers' CPU too
results = sum(len(r.results) for r in rated)
print(json.dumps({"s": took, "cpu": cpu, "results": results, "workers": workers}))
"""


def _time(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _commands(exe: str, dbl: list[str] | None) -> dict[str, list[str]]:
    commands = {
        BASE: [sys.executable, "-c", "import psutil"],
        "canirun --version": [exe, "--version"],
        "canirun hardware --json": [exe, "hardware", "--json"],
        "canirun scan --json --ram-bandwidth off": [
            exe,
            "scan",
            "--json",
            "--ram-bandwidth",
            "off",
        ],
        "canirun check llama --json --ram-bandwidth off": [
            exe,
            "check",
            "llama",
            "--json",
            "--ram-bandwidth",
            "off",
        ],
        "canirun frameworks": [exe, "frameworks"],
        "canirun frameworks --json": [exe, "frameworks", "--json"],
    }
    if dbl is not None:
        commands["doubled: canirun scan --json --ram-bandwidth off"] = [
            *dbl,
            "scan",
            "--json",
            "--ram-bandwidth",
            "off",
        ]
    return commands


def _rating(
    python: str, site: Path | None, runs: int, way: str = "cli"
) -> tuple[float, float, int, int]:
    """Median milliseconds per rated result (wall, CPU with the workers') over `runs` fresh
    processes, the results and the processes used. ``way``: "cli" shares the rating out
    as the command line does (canirun.fanout), "one" keeps it in one process."""
    per, per_cpu, results, workers = [], [], 0, 1
    for _ in range(runs):
        args = [python, "-c", RATE_CHILD, way, *([str(site)] if site else [])]
        out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
        per.append(out["s"] * 1000 / out["results"])
        per_cpu.append(out["cpu"] * 1000 / out["results"])
        results, workers = out["results"], out["workers"]
    return statistics.median(per), statistics.median(per_cpu), results, workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--no-doubled", action="store_true", help="skip the doubled catalog")
    parser.add_argument(
        "--before",
        metavar="PYTHON",
        help="also time another install (its interpreter), interleaved in the same run",
    )
    args = parser.parse_args()
    exe = shutil.which("canirun", path=os.path.dirname(sys.executable)) or "canirun"
    with tempfile.TemporaryDirectory() as tmp:
        site = None if args.no_doubled else doubled.build(sys.executable, Path(tmp))
        dbl = None if site is None else doubled.command(sys.executable, site)
        commands = _commands(exe, dbl)
        if args.before:
            old_exe = shutil.which("canirun", path=os.path.dirname(args.before)) or "canirun"
            old_site = None if args.no_doubled else doubled.build(args.before, Path(tmp) / "b")
            old_dbl = None if old_site is None else doubled.command(args.before, old_site)
            for name, cmd in _commands(old_exe, old_dbl).items():
                if name != BASE:
                    commands[f"before: {name}"] = cmd
        for cmd in commands.values():  # warm the page cache and .pyc files
            _time(cmd)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        order = list(commands.items())
        for _ in range(args.runs):
            # Alternate the order every round: no command (and no install) always goes first.
            order.reverse()
            for name, cmd in order:
                wall, cpu = _time(cmd)
                walls[name].append(wall)
                cpus[name].append(cpu)
        rating = [("today", *_rating(sys.executable, None, 5))]
        if site is not None:
            rating.append(("doubled", *_rating(sys.executable, site, 5)))
        rating.append(("today, in one process", *_rating(sys.executable, None, 5, "one")))
        if args.before:
            rating.append(("before, today", *_rating(args.before, None, 5)))
    base = statistics.median(walls[BASE])
    base_cpu = statistics.median(cpus[BASE])
    print(f"{'command':<58} {'wall':>9} {'ratio':>7} {'cpu':>9} {'ratio':>7} {'budget':>7}")
    for name in commands:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        budget = BUDGETS.get(name.removeprefix("before: "))
        verdict = (
            "" if budget is None else f"{budget:4.1f}x {'ok' if wall / base <= budget else 'OVER'}"
        )
        print(
            f"{name:<58} {wall * 1000:7.1f}ms {wall / base:6.2f}x {cpu * 1000:7.1f}ms "
            f"{cpu / base_cpu:6.2f}x {verdict}"
        )
    print(f"({args.runs} runs each, {os.cpu_count()} CPUs; ratios to the psutil import)")
    for label, ms, cpu_ms, results, workers in rating:
        verdict = "ok" if ms <= RATE_BUDGET_MS else "OVER"
        print(
            f"rating, {label}: {ms:.3f} ms wall, {cpu_ms:.3f} ms CPU per rated result "
            f"({results} results, {workers} process{'es' if workers > 1 else ''}), "
            f"budget {RATE_BUDGET_MS} ms: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
