"""A copy of the installed canirun whose shipped catalog holds every model twice.

The catalog is about to double; this measures that future today. The copy lives in a
temporary folder: the installed package is copied there, each shipped model file gets
a twin (`zz-double-<file>`) whose entries carry new ids (`<id>-copy`), names and
aliases, and no Ollama tags (one tag pulls one model), and compiled.json is rebuilt
by the copied package's own compiler so that it is read exactly as a real release.
Nothing installed is changed.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

SUFFIX = "-copy"

REBUILD = """
import json, sys
SUFFIX = "@SUFFIX@"
from pathlib import Path
from canirun.catalog import loader
data = Path(loader.__file__).parent / "data"
twins = json.loads(sys.stdin.read())
for name in twins:
    (data / name).write_text("# benchmark twin: parsed form in compiled.json\\n", encoding="utf-8")
files = loader._shipped_files()
compiled = json.loads((data / loader.COMPILED).read_text(encoding="utf-8"))
for name, parsed in twins.items():
    compiled["files"][f"{loader.SHIPPED}/{name}"] = parsed
compiled["digest"] = loader.sources_digest(files)
# A twin has its original's shapes: a release would precompute the same layouts and cycles.
for parsed in twins.values():
    for model in parsed["model"]:
        for variant in model.get("variants", []):
            twin, key = f"{model['id']}-{variant['key']}", variant["key"]
            original = f"{model['id'].removesuffix(SUFFIX)}-{key}"
            for table in ("gguf_layouts", "decode_cycles"):
                known = compiled.get(table, {})
                if original in known:
                    known[twin] = known[original]
(data / loader.COMPILED).write_text(json.dumps(compiled, separators=(",", ":"), sort_keys=True))
if hasattr(loader, "validated_pickle"):  # releases since the validated catalog.pickle
    (data / loader.VALIDATED).write_bytes(loader.validated_pickle(files, compiled))
""".replace("@SUFFIX@", SUFFIX)


def _twin_model(model: dict[str, Any]) -> dict[str, Any]:
    twin = copy.deepcopy(model)
    twin["id"] = model["id"] + SUFFIX
    twin["name"] = model["name"] + " (copy)"
    twin["aliases"] = [a + SUFFIX for a in model.get("aliases", [])]
    for variant in twin.get("variants", []):
        variant.pop("ollama", None)
        variant["name"] = variant["name"] + " (copy)"
        variant["aliases"] = [a + SUFFIX for a in variant.get("aliases", [])]
    return twin


def build(python: str, folder: Path) -> Path:
    """Copy the canirun that `python` imports into `folder`, doubled; returns the sys.path entry."""
    where = subprocess.run(
        [python, "-c", "import canirun, os; print(os.path.dirname(canirun.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site = folder / "site"
    shutil.copytree(where, site / "canirun", ignore=shutil.ignore_patterns("__pycache__"))
    compiled = json.loads((site / "canirun/catalog/data/compiled.json").read_text("utf-8"))
    twins = {}
    for name, parsed in compiled["files"].items():
        models = parsed.get("model", [])
        if models:
            base = name.rsplit("/", 1)[-1]
            twins[f"zz-double-{base}"] = {"model": [_twin_model(m) for m in models]}
    subprocess.run(
        [python, "-c", REBUILD],
        input=json.dumps(twins),
        text=True,
        check=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    # Byte-compiled as pip installs a release: without it every run would compile the copy's
    # sources (~80 ms), and where PYTHONDONTWRITEBYTECODE is set, every run again.
    subprocess.run([python, "-m", "compileall", "-q", str(site / "canirun")], check=True)
    return site


def command(python: str, site: Path) -> list[str]:
    """The canirun command line for the doubled copy (same entry point as the script)."""
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "try:\n    from canirun.entry import main\n"  # the console script's, since 0.1.0
        "except ImportError:\n    from canirun.cli import main\n"
        "raise SystemExit(main())"
    )
    return [python, "-c", code]


if __name__ == "__main__":
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    print(build(sys.executable, tmp))
