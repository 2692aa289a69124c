"""Check one catalog TOML file on its own while writing it.

    python scripts/check_catalog_file.py src/canirun/catalog/data/code.toml

Validates the schema, checks framework ids against the fixed list, and for
decoders compares the parameter count implied by `arch` with `params.total`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from canirun.catalog.loader import _parse, load_catalog
from canirun.errors import InputError
from canirun.estimate.params import active_decoder_params, decoder_params

# The shipped framework ids (a model file may only name these).
FRAMEWORKS = {fw.id for fw in load_catalog(user_dir=False).frameworks}


def main(path: str) -> int:
    try:
        parsed = _parse(path, Path(path).read_text(encoding="utf-8"))
    except InputError as exc:
        print(f"INVALID: {exc}")
        return 1
    status = 0
    for model in parsed.model:
        refs = set(model.frameworks) | {
            r.framework for v in model.variants for r in v.requirements if r.framework
        }
        if unknown := refs - FRAMEWORKS:
            print(f"{model.id}: unknown framework ids {sorted(unknown)}")
            status = 1
        for v in model.variants:
            total = f"{v.params.total:,}" if v.params else "none"
            line = f"{model.id}-{v.key}: params={total}"
            if v.arch and v.params:
                implied = decoder_params(v.arch)
                off = implied / v.params.total - 1
                line += f" arch-implied={implied:,} ({off:+.1%})"
                if v.params.active:
                    act = active_decoder_params(v.arch)
                    line += f" active={v.params.active:,} implied-active={act:,}"
                if abs(off) > 0.04:
                    line += "   <-- more than 4% off: check arch or params"
                    status = 1
            print(line)
    print(f"{len(parsed.model)} models, {len(parsed.framework)} frameworks, {len(parsed.gpu)} gpus")
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
