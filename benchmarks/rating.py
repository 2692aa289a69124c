"""User CPU time of the rating loop per rated result (issue 15: budget 0.1 ms).

    PYTHONPATH=src python benchmarks/rating.py [--runs 7]

For each host (this machine's CPU, an RTX 4090 with 64 GB of RAM, 2x A100 80GB) a fresh
interpreter runs ``canirun scan --json --ram-bandwidth off`` in-process, with
``evaluate.rate_all`` timed (user CPU time, getrusage) as the CLI calls it, in one process
(``CANIRUN_WORKERS=1``; benchmarks/startup.py times it shared out to workers): the memos
start empty, as in any scan. Prints the median and the fastest run, in ms per rated result.
Run it without PYTHONDONTWRITEBYTECODE, or every import recompiles from source (that is
not timed here, but slows the runs down).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import contextlib, io, json, os, resource, sys
os.environ["CANIRUN_WORKERS"] = "1"  # one process: RUSAGE_SELF is then the whole rating
from canirun import entry, evaluate
rate_all, out = evaluate.rate_all, {}
def timed(*args, **kwargs):
    t0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    rated = rate_all(*args, **kwargs)
    out["user_s"] = resource.getrusage(resource.RUSAGE_SELF).ru_utime - t0
    out["results"] = sum(len(r.results) for r in rated)
    return rated
evaluate.rate_all = timed
sys.argv = ["canirun", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        entry.main(sys.argv[1:])  # as the console script runs (no cyclic GC)
    except SystemExit:
        pass
print(json.dumps(out))
"""

SCAN = ("scan", "--json", "--ram-bandwidth", "off")
HOSTS: dict[str, tuple[str, ...]] = {
    "this machine (CPU)": SCAN,
    "RTX 4090 + 64 GB": (*SCAN, "--gpu", "RTX 4090", "--ram", "64GB"),
    "2x A100 80GB": (*SCAN, "--gpu", "2x A100 80GB"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name, argv in HOSTS.items():
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", CHILD, json.dumps(argv)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout
            )
            for _ in range(args.runs)
        ]
        n = runs[0]["results"]
        times = [r["user_s"] * 1000 for r in runs]
        med, best = statistics.median(times), min(times)
        print(
            f"{name:<20} {n} results: rate_all median {med:6.1f} ms ({med / n:.3f} ms/result), "
            f"fastest {best:6.1f} ms ({best / n:.3f} ms/result) over {args.runs} runs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
