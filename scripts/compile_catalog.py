"""Pre-parse the shipped catalog TOML into src/canirun/catalog/data/compiled.json.

    python scripts/compile_catalog.py

The TOML files stay the source of truth; the JSON only spares every run the
~25 ms that Python's pure-Python TOML parser needs, and the replay of llama.cpp's
quantisation recipe for each shipped variant's GGUF file types. The loader uses it only
while its digest matches the TOML files, and tests/test_catalog.py fails when
it is stale, so run this after editing any shipped catalog file.

It also writes src/canirun/schema/report-layout.json, the scan and check report models'
field order and defaults for the pydantic-free JSON writer (canirun.report_json;
tests/test_report_json.py fails when it is stale): run it after editing canirun.report.
And src/canirun/schema/records.codes, the records' dataclass methods compiled for this
Python (canirun.codecache; tests/test_codecache.py fails when it is stale): run it after
adding or changing a record class.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

from canirun.catalog import rules
from canirun.catalog.compiled import DETECT, detect_document
from canirun.catalog.loader import (
    COMPILED,
    VALIDATED,
    Catalog,
    _merge,
    _parse,
    _shipped_files,
    sources_digest,
    validated_pickle,
)
from canirun.codecache import TABLE as CODE_TABLE
from canirun.estimate import gguf, speed
from canirun.estimate.precision import PRECISIONS
from canirun.resolve import name_forms


def gguf_layouts(catalog: Catalog) -> dict[str, dict[str, object]]:
    """Every shipped variant's GGUF layout (total and per-layer bytes) per GGML file type,
    so that a run looks them up instead of replaying llama.cpp's recipe (issue 15)."""
    ftypes = sorted(name for name, p in PRECISIONS.items() if p.family == "ggml")
    out: dict[str, dict[str, object]] = {}
    for ref in catalog.variants():
        arch = ref.variant.arch
        if arch is None or arch.gguf_arch is None:
            continue
        out[ref.id] = {f: gguf.encode_layout(gguf._layout(arch, arch.gguf_arch, f)) for f in ftypes}
    return out


def decode_cycles(catalog: Catalog) -> dict[str, dict[str, float | None]]:
    """Every shipped variant's llama.cpp x86 decode cycles per token per GGML file type,
    so that a scan looks them up instead of costing every tensor (issue 15)."""
    ftypes = sorted(name for name, p in PRECISIONS.items() if p.family == "ggml")
    out: dict[str, dict[str, float | None]] = {}
    for ref in catalog.variants():
        arch = ref.variant.arch
        if arch is None or arch.gguf_arch is None:
            continue
        out[ref.id] = {f: speed.x86_decode_cycles(arch, arch.gguf_arch, f) for f in ftypes}
    return out


def layout_text(table: dict[str, list[list[object]]]) -> str:
    """The report layout as JSON, one field to a line (a reviewable diff)."""
    models = [
        f"  {json.dumps(name)}: [\n"
        + ",\n".join(f"    {json.dumps(row)}" for row in rows)
        + "\n  ]"
        for name, rows in table.items()
    ]
    return "{\n" + ",\n".join(models) + "\n}\n"


SRC = Path(__file__).resolve().parent.parent / "src"


def record_modules() -> list[str]:
    """The package's modules that define records (canirun.records): their dataclass
    methods go into the code table."""
    found = []
    for path in sorted((SRC / "canirun").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "@record(" in text or "@entry" in text:
            found.append(".".join(path.relative_to(SRC).with_suffix("").parts))
    return found


def write_code_table() -> int:
    """schema/records.codes, written by a fresh interpreter (canirun.codecache)."""
    import subprocess

    child = f"from canirun.codecache import write_table; print(write_table({record_modules()!r}))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # catalog.pickle holds pydantic's fields-set sets, whose order follows the string
        # hash seed: one fixed seed makes the file the same bytes on every run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    files = _shipped_files()
    parsed = {name: tomllib.loads(text) for name, text in files}
    compiled = {
        "digest": sources_digest(files),
        "files": parsed,
    }
    catalog = _merge([(n, _parse(n, "", raw)) for n, raw in parsed.items()])
    compiled["gguf_layouts"] = gguf_layouts(catalog)
    compiled["decode_cycles"] = decode_cycles(catalog)
    compiled["name_forms"] = name_forms(catalog)
    target = Path(__file__).resolve().parent.parent / "src/canirun/catalog/data" / COMPILED
    target.write_text(json.dumps(compiled, separators=(",", ":"), sort_keys=True) + "\n")
    validated = target.with_name(VALIDATED)
    validated.write_bytes(validated_pickle(files, compiled))  # the same data, validated
    detect = target.with_name(DETECT)
    detect.write_text(json.dumps(detect_document(files), indent=1, sort_keys=True) + "\n")
    tables = target.parent.parent / "rules" / rules.VALIDATED
    tables.write_bytes(rules.validated_pickle())  # capabilities and runtime defaults, validated
    from canirun.report import layout_table
    from canirun.report_json import LAYOUT_FILE

    LAYOUT_FILE.write_text(layout_text(layout_table()), encoding="utf-8")
    print(f"wrote {CODE_TABLE} ({write_code_table()} compiled dataclass methods)")
    print(f"wrote {target} ({target.stat().st_size:,} bytes, {len(files)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
