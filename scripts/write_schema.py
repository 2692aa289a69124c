"""Write the report's JSON Schema into src/canirun/schema/ and record its digest.

    python scripts/write_schema.py

`versions.json` maps each schema version to the SHA-256 of its schema. A
version, once recorded, is never given another digest: changing the report
models means bumping SCHEMA_VERSION (src/canirun/envelope.py) first, and
tests/test_schema.py fails until that is done.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from canirun.envelope import SCHEMA_VERSION
from canirun.report import report_schema

FOLDER = Path(__file__).resolve().parent.parent / "src/canirun/schema"


def schema_text() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = schema_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    versions_path = FOLDER / "versions.json"
    versions = json.loads(versions_path.read_text()) if versions_path.exists() else {}
    known = versions.get(SCHEMA_VERSION)
    if known is not None and known != digest:
        print(
            f"schema version {SCHEMA_VERSION} is already recorded with another schema: "
            "bump SCHEMA_VERSION in src/canirun/envelope.py, then run this again",
            file=sys.stderr,
        )
        return 1
    versions[SCHEMA_VERSION] = digest
    (FOLDER / "report.schema.json").write_text(text)
    versions_path.write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")
    print(f"schema {SCHEMA_VERSION}: {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
