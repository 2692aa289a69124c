"""Accuracy of canirun's estimates against published figures (tests/reference/).

    python benchmarks/accuracy.py [--worst 5]

For each kind of figure it prints how many published values were compared, the
median and worst relative error of canirun's estimate, and the worst rows with
their sources. GGUF and weight-file rows use the formula alone (never a size
stored in the catalog); runtime rows use what `check` plans for that setting.
Targets (issue 4): weights within 3 % of real files; totals within 10 % of
published runtime figures and never more than 5 % below them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reference_data import Comparison, all_comparisons

TITLES = {
    "gguf_file": "GGUF file sizes (weights, per-tensor recipe)",
    "weights_file": "16/32-bit weight files",
    "mlx_file": "MLX quantised files (mlx_lm.convert -q)",
    "kv_cache": "KV cache sizes llama.cpp prints",
    "runtime": "published runtime memory (GPU size planned)",
    "quantized_footprint": "int8/int4 loads (Transformers' measured)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worst", type=int, default=5, help="rows to show per kind")
    args = parser.parse_args()
    groups: dict[str, list[Comparison]] = defaultdict(list)
    for c in all_comparisons():
        if c.error is not None:
            groups[c.kind].append(c)
    print(
        f"{'figure':<46}{'n':>5}{'median |err|':>14}{'worst low':>11}{'worst high':>12}"
        f"{'within 3%':>11}{'within 10%':>12}"
    )
    for kind, title in TITLES.items():
        rows = groups.get(kind, [])
        if not rows:
            continue
        errors = [c.error for c in rows if c.error is not None]
        med = statistics.median(abs(e) for e in errors)
        low, high = min(errors), max(errors)
        w3 = sum(abs(e) <= 0.03 for e in errors) / len(errors)
        w10 = sum(abs(e) <= 0.10 for e in errors) / len(errors)
        print(
            f"{title:<46}{len(rows):>5}{med:>13.2%}{low:>+11.1%}{high:>+12.1%}"
            f"{w3:>11.0%}{w10:>12.0%}"
        )
    for kind, title in TITLES.items():
        rows = sorted(groups.get(kind, []), key=lambda c: -abs(c.error or 0))[: args.worst]
        if rows:
            print(f"\nlargest errors, {title}:")
            for c in rows:
                print(
                    f"  {c.error:+7.1%}  {c.label:<45} published {c.published / 1e9:.3f} GB, "
                    f"estimated {(c.estimated or 0) / 1e9:.3f} GB"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
