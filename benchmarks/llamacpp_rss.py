"""canirun's llama.cpp RAM estimate against measured peak resident memory (issue 17).

    python benchmarks/llamacpp_rss.py

For every load in tests/reference/llamacpp-measured.toml ([[peak_rss]]: context filled with
n_ctx - 16 prompt tokens, then 8 generated; use_mmap off; CPU backend) it prints canirun's
estimate, its terms, the measured peak (VmHWM) and the error. Target: every load within
0 ... +5 %, the median at most +3 %.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.llamacpp_peak import MIB, compare, peak_rows


def main() -> int:
    comps = [compare(r) for r in peak_rows()]
    head = f"{'load':58} {'weights':>8} {'kv':>7} {'compute':>8} {'process':>8} "
    print(head + f"{'estimate':>9} {'measured':>9} {'error':>7}   (MiB)")
    for c in comps:
        t = c.terms
        print(
            f"{c.label:58} {t['weights'] / MIB:8.1f} {t['kv'] / MIB:7.1f} "
            f"{t['compute'] / MIB:8.1f} {t['process'] / MIB:8.1f} "
            f"{c.estimate / MIB:9.1f} {c.measured / MIB:9.1f} {c.error:+7.1%}"
        )
    errors = [c.error for c in comps]
    print(
        f"\n{len(comps)} loads: median {statistics.median(errors):+.1%}, "
        f"min {min(errors):+.1%}, max {max(errors):+.1%}; "
        f"within 0 ... +5 %: {sum(0 <= e <= 0.05 for e in errors)}/{len(errors)}"
    )
    return 0 if all(0 <= e <= 0.05 for e in errors) else 1


if __name__ == "__main__":
    sys.exit(main())
