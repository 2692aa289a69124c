"""Pre-parse the shipped catalog TOML into src/canirun/catalog/data/compiled.json.

    python scripts/compile_catalog.py

The TOML files stay the source of truth; the JSON only spares every run the
~25 ms that Python's pure-Python TOML parser needs. The loader uses it only
while its digest matches the TOML files, and tests/test_catalog.py fails when
it is stale, so run this after editing any shipped catalog file.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from canirun.catalog.loader import COMPILED, _shipped_files, sources_digest


def main() -> int:
    files = _shipped_files()
    compiled = {
        "digest": sources_digest(files),
        "files": {name: tomllib.loads(text) for name, text in files},
    }
    target = Path(__file__).resolve().parent.parent / "src/canirun/catalog/data" / COMPILED
    target.write_text(json.dumps(compiled, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size:,} bytes, {len(files)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
