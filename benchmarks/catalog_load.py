"""How long loading and validating the whole catalog takes, and rating it.

    python benchmarks/catalog_load.py [--runs 15]

Each run is a fresh interpreter (the loader caches per process), timing: import
and load the catalog; then rate every variant for a fixed what-if machine.
Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, time
t0 = time.perf_counter()
from canirun.catalog.loader import load_catalog
t1 = time.perf_counter()
catalog = load_catalog(user_dir=False)
t2 = time.perf_counter()
from canirun.estimate.capacity import capacity
from canirun.estimate.rate import Options
from canirun.evaluate import rate_all
from canirun.hardware.model import Gpu, Hardware, Host, Memory
host = Host(Hardware(memory=Memory(total_bytes=64 * 2**30, available_bytes=64 * 2**30),
                     gpus=(Gpu("nvidia", "NVIDIA GeForce RTX 4090", 24 * 2**30, index=0,
                               memory_free_bytes=24 * 2**30),)))
t3 = time.perf_counter()
rated = rate_all(catalog.variants(), catalog, capacity(host, catalog.gpus), Options())
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "rate": t4 - t3,
                  "variants": len(rated), "results": sum(len(r.results) for r in rated)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    samples = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
        ).stdout
        samples.append(json.loads(out))
    for key, label in (
        ("import", "import the loader (pydantic, schema)"),
        ("load", "read + validate every catalog file"),
        ("rate", "rate every variant, all precisions"),
    ):
        med = statistics.median(s[key] for s in samples) * 1000
        print(f"{label:<40} median {med:7.1f} ms over {args.runs} runs")
    last = samples[-1]
    print(f"catalog: {last['variants']} variants, {last['results']} results per scan")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
