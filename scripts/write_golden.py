"""Regenerate tests/golden/: the full output of canirun for several machines.

    PYTHONPATH=src python scripts/write_golden.py

Run it only after an intended change to what canirun says (catalog data, a rule),
then review what changed: ``zdiff`` or ``python -m tests.golden_diff CASE``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.golden_cases import CASES, GOLDEN, hardware_files, run_case, write_golden


def main() -> int:
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # no user catalog
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = hardware_files(Path(tmp))
        for case in CASES:
            code, out = run_case(case, files)
            write_golden(case, code, out)
            print(f"{case}: exit {code}, {len(out):,} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
