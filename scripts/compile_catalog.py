"""Pre-parse the shipped catalog TOML into src/canirun/catalog/data/compiled.json.

    python scripts/compile_catalog.py

The TOML files stay the source of truth; the JSON only spares every run the
~25 ms that Python's pure-Python TOML parser needs, and the replay of llama.cpp's
quantisation recipe for each shipped variant's GGUF file types. The loader uses it only
while its digest matches the TOML files, and tests/test_catalog.py fails when
it is stale, so run this after editing any shipped catalog file.
"""

from __future__ import annotations

import json
import pickle
import tomllib
from pathlib import Path

from canirun.catalog.compiled import DETECT, detect_document
from canirun.catalog.loader import (
    COMPILED,
    VALIDATED,
    Catalog,
    _merge,
    _parse,
    _shipped_files,
    sources_digest,
    validated_stamp,
)
from canirun.estimate import gguf, speed
from canirun.estimate.precision import PRECISIONS


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


def validated_pickle(files: list[tuple[str, str]], compiled: dict[str, object]) -> bytes:
    """catalog.pickle: the shipped files validated, with the layouts and decode cycles, under
    the stamp the loader checks (loader.validated_stamp)."""
    # From the JSON as written (its keys sorted), exactly as the loader reads compiled.json.
    raw = json.loads(json.dumps(compiled["files"], sort_keys=True))
    document = {
        "files": {name: _parse(name, "", raw[name]) for name, _ in files},
        "gguf_layouts": compiled["gguf_layouts"],
        "decode_cycles": compiled["decode_cycles"],
    }
    payload = pickle.dumps(document, protocol=5)
    return pickle.dumps((validated_stamp(files), payload), protocol=5)


def main() -> int:
    files = _shipped_files()
    parsed = {name: tomllib.loads(text) for name, text in files}
    compiled = {
        "digest": sources_digest(files),
        "files": parsed,
    }
    catalog = _merge([(n, _parse(n, "", raw)) for n, raw in parsed.items()])
    compiled["gguf_layouts"] = gguf_layouts(catalog)
    compiled["decode_cycles"] = decode_cycles(catalog)
    target = Path(__file__).resolve().parent.parent / "src/canirun/catalog/data" / COMPILED
    target.write_text(json.dumps(compiled, separators=(",", ":"), sort_keys=True) + "\n")
    validated = target.with_name(VALIDATED)
    validated.write_bytes(validated_pickle(files, compiled))
    detect = target.with_name(DETECT)
    detect.write_text(json.dumps(detect_document(files), indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size:,} bytes, {len(files)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
