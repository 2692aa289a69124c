"""1,000 model names in one `canirun check`: median wall time (budget 1 s, issue 15).

    python benchmarks/queries.py [--queries 1000] [--runs 5]

The names are what people type, drawn in turn from the catalog's own vocabulary
(names, aliases, Ollama tags), so each resolves; the command is run on the installed
canirun with --ram-bandwidth off and prints the median over the runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

NAMES = """
from canirun.catalog import load_catalog
from canirun.resolve import _SPEC_WORD, vocabulary
# A bare size or version ("14") joins the name before it, as a user means it.
words = [w for w in vocabulary(load_catalog(user_dir=False)) if not _SPEC_WORD.match(w)]
print("\\n".join(words))
"""
BUDGET_S = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    names = subprocess.run(
        [sys.executable, "-c", NAMES], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    queries = [names[i % len(names)] for i in range(args.queries)]
    exe = shutil.which("canirun", path=os.path.dirname(sys.executable)) or "canirun"
    cmd = [exe, "check", *queries, "--json", "--ram-bandwidth", "off"]
    times = []
    for _ in range(args.runs + 1):  # the first run warms the caches and is dropped
        start = time.perf_counter()
        done = subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
        )
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"canirun check exited {done.returncode}: {done.stderr.strip()}")
    med = statistics.median(times[1:])
    verdict = "within" if med <= BUDGET_S else "OVER"
    print(
        f"check with {args.queries} names ({len(set(queries))} distinct): median {med:.2f} s "
        f"over {args.runs} runs; budget {BUDGET_S:.0f} s: {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
