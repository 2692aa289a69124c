"""Move Ollama tags written as aliases into the variants' dated `ollama` field.

    python scripts/ollama_tags.py src/canirun/catalog/data/*.toml     # list them (exit 1 if any)
    python scripts/ollama_tags.py --write --as-of 2025-06 FILE...     # move them

An Ollama tag is catalog data with a source and a date (`ollama = { tags, as_of,
source, ... }`, docs/catalog.md), not an alias. For every model that lists the
`ollama` framework, an alias shaped like an Ollama reference (`qwen3:8b`) is
moved into that variant's `ollama.tags`, with `source` = the library page of its
name, and `estimate = true` with a note: the move does not re-read the page, so
a person checks the tags (and adds `retargeted` where Ollama moved one) before
dropping the flag. Only one-line `aliases = [...]` entries are rewritten; the
file is otherwise left as it was.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

# The schema's Ollama reference: [namespace/]name:tag.
OLLAMA_SHAPED = re.compile(
    r"^(?:[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*:[A-Za-z0-9][A-Za-z0-9._-]*$"
)
_ALIASES = re.compile(r"^aliases = \[.*\]\s*$")


@dataclass(frozen=True)
class Found:
    path: str
    variant: str  # <model id>-<variant key>
    tags: tuple[str, ...]


def ollama_shaped_aliases(raw: dict[str, object], path: str = "") -> list[Found]:
    """Aliases of Ollama-served models that look like Ollama tags, per variant."""
    found = []
    models = raw.get("model", [])
    for model in models if isinstance(models, list) else []:
        if "ollama" not in model.get("frameworks", []):
            continue
        for variant in model.get("variants", []):
            tags = tuple(a for a in variant.get("aliases", []) if OLLAMA_SHAPED.match(a))
            if tags:
                found.append(Found(path, f"{model['id']}-{variant['key']}", tags))
    return found


def _ollama_line(tags: list[str], as_of: str) -> str:
    library = tags[0].split(":")[0]
    note = (
        "moved from aliases; the library page was not re-read: check the tags, then drop estimate"
    )
    return (
        f"ollama = {{ tags = {json.dumps(tags)}, as_of = {json.dumps(as_of)}, "
        f'source = "https://ollama.com/library/{library}", estimate = true, '
        f"note = {json.dumps(note)} }}"
    )


def rewrite(text: str, as_of: str) -> tuple[str, int]:
    """The file with its Ollama-shaped aliases moved, and how many variants changed."""
    raw = tomllib.loads(text)
    wanted = {f.variant: f.tags for f in ollama_shaped_aliases(raw)}
    model_ids = iter(m["id"] for m in raw.get("model", []))
    model_id, key, has_ollama = "", "", False
    out: list[str] = []
    changed = 0
    for line in text.split("\n"):
        if line.strip() == "[[model]]":
            model_id, key = next(model_ids), ""
        elif line.strip() == "[[model.variants]]":
            key, has_ollama = "", False
        elif line.startswith("key = ") and model_id:
            key = tomllib.loads(line)["key"]
        elif line.startswith("ollama = "):
            has_ollama = True
        match = _ALIASES.match(line)
        tags = wanted.get(f"{model_id}-{key}") if match and key else None
        if match and tags and not has_ollama:
            kept = [a for a in tomllib.loads(line)["aliases"] if a not in tags]
            out.append(_ollama_line(list(tags), as_of))
            out.append(f"aliases = {json.dumps(kept, ensure_ascii=False)}")
            changed += 1
            continue
        out.append(line)
    return "\n".join(out), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="move the tags (default: list)")
    parser.add_argument("--as-of", default=None, help="YYYY-MM[-DD] the tags are dated (--write)")
    args = parser.parse_args(argv)
    if args.write and not (args.as_of and re.match(r"^\d{4}-\d{2}(-\d{2})?$", args.as_of)):
        parser.error("--write needs --as-of YYYY-MM or YYYY-MM-DD")
    total = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        if args.write:
            new, changed = rewrite(text, args.as_of)
            if changed:
                path.write_text(new, encoding="utf-8")
            total += changed
            print(f"{path}: {changed} variants changed")
            continue
        for found in ollama_shaped_aliases(tomllib.loads(text), str(path)):
            print(f"{path}: {found.variant}: {', '.join(found.tags)}")
            total += 1
    return 0 if args.write or total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
