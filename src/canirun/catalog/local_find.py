"""Find the models already on this machine, where the tools that downloaded them keep them.

- the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub):
  ``models--ORG--NAME/snapshots/REV/`` (the revision ``refs/main`` names, else the newest);
- Ollama's store (OLLAMA_MODELS, else ~/.ollama/models and the Linux service's
  /usr/share/ollama/.ollama/models): ``manifests/REGISTRY/NAMESPACE/MODEL/TAG`` name
  the model blob in ``blobs/``;
- LM Studio's models folder (~/.lmstudio/models, ~/.cache/lm-studio/models);
- llama.cpp's download cache (LLAMA_CACHE, else ~/.cache/llama.cpp);
- any ``--models-dir DIR``: GGUF files and model folders anywhere below it.

The walk never follows a symlinked directory (no loops), stops at a depth and
an entry budget, and reads only names and small JSON files here: headers are
read later, per model. What cannot be used is returned as ``Skipped``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from canirun.catalog.local_model import ModelFileError, read_json
from canirun.records import Record, record

MAX_ENTRIES = 200_000  # directory entries looked at per store
MANIFEST_BYTES = 1 << 20
MODEL_LAYER = "application/vnd.ollama.image.model"
PROJECTOR_LAYER = "application/vnd.ollama.image.projector"
_SPLIT_PART = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)


@record(slots=True)
class Found(Record):
    name: str  # as the tool names it: ORG/NAME, llama3.2:3b, a file name
    path: Path  # the GGUF file (first part) or the model folder
    store: str  # hf-cache, ollama, lm-studio, llama.cpp, models-dir
    projector: Path | None = None  # an Ollama vision projector blob


@record(slots=True)
class Skipped(Record):
    path: str
    reason: str


@dataclass(slots=True)
class Search:
    found: list[Found] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)


def _home(env: Mapping[str, str]) -> Path | None:
    try:
        home = Path(env.get("HOME") or Path.home())
    except RuntimeError:
        return None
    return home


def _cache(env: Mapping[str, str], home: Path | None) -> Path | None:
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"])
    if home is None:
        return None
    if sys.platform == "darwin":
        return home / "Library" / "Caches"
    return home / ".cache"


def stores(env: Mapping[str, str], models_dirs: tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """Where to look, per tool, in order; folders that do not exist are left out later."""
    home = _home(env)
    cache = _cache(env, home)
    out: list[tuple[str, Path]] = []
    if env.get("HF_HUB_CACHE"):
        out.append(("hf-cache", Path(env["HF_HUB_CACHE"]).expanduser()))
    elif env.get("HF_HOME"):
        out.append(("hf-cache", Path(env["HF_HOME"]).expanduser() / "hub"))
    elif home is not None:
        xdg = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
        out.append(("hf-cache", xdg / "huggingface" / "hub"))
    if env.get("OLLAMA_MODELS"):
        out.append(("ollama", Path(env["OLLAMA_MODELS"]).expanduser()))
    else:
        if home is not None:
            out.append(("ollama", home / ".ollama" / "models"))
        out.append(("ollama", Path("/usr/share/ollama/.ollama/models")))
    if home is not None:
        out.append(("lm-studio", home / ".lmstudio" / "models"))
        out.append(("lm-studio", home / ".cache" / "lm-studio" / "models"))
    if env.get("LLAMA_CACHE"):
        out.append(("llama.cpp", Path(env["LLAMA_CACHE"]).expanduser()))
    elif cache is not None:
        out.append(("llama.cpp", cache / "llama.cpp"))
    out += [("models-dir", d.expanduser()) for d in models_dirs]
    return out


def find_models(env: Mapping[str, str], models_dirs: tuple[Path, ...] = ()) -> Search:
    search = Search()
    seen: set[str] = set()
    for store, root in stores(env, models_dirs):
        key = os.path.realpath(root)
        if key in seen or not root.is_dir():
            continue
        seen.add(key)
        search.searched.append(f"{store}: {root}")
        finder = {"hf-cache": _hf_cache, "ollama": _ollama}.get(store, _tree)
        finder(root, store, search)
    # A --models-dir over a tool's store finds its models twice: the tool's name wins.
    unique: dict[str, Found] = {}
    for found in search.found:
        unique.setdefault(os.path.realpath(found.path), found)
    search.found = list(unique.values())
    return search


# --- a bounded walk ----------------------------------------------------------


class _Budget:
    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.left = limit

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _entries(folder: Path, budget: _Budget, search: Search) -> list[os.DirEntry[str]]:
    out = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if not budget.take():
                    search.skipped.append(
                        Skipped(str(folder), f"stopped after {MAX_ENTRIES:,} entries")
                    )
                    break
                out.append(entry)
    except OSError as exc:
        search.skipped.append(Skipped(str(folder), f"cannot list it: {exc.strerror or exc}"))
    return sorted(out, key=lambda e: e.name)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)  # never into a symlinked folder: no loops
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # cache snapshots hold symlinks to blobs: follow those
    except OSError:
        return False


def _gguf_files(files: list[os.DirEntry[str]]) -> Iterator[Path]:
    """GGUF files, one per split set (its first part)."""
    for e in files:
        if not e.name.lower().endswith(".gguf") or not _is_file(e):
            continue
        m = _SPLIT_PART.search(e.name)
        if m and int(m[1]) != 1:
            continue
        if "mmproj" in e.name.lower():
            continue  # a vision projector: loaded next to its model, not a model
        yield Path(e.path)


def _is_model_folder(names: set[str]) -> bool:
    return "model_index.json" in names or (
        "config.json" in names
        and any(n.endswith((".safetensors", ".bin", ".safetensors.index.json")) for n in names)
    )


def _tree(root: Path, store: str, search: Search, max_depth: int = 6) -> None:
    """GGUF files and model folders anywhere below ``root``."""
    budget = _Budget()
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        entries = _entries(folder, budget, search)
        names = {e.name for e in entries}
        rel = folder.relative_to(root).as_posix() if folder != root else folder.name
        if _is_model_folder(names):
            search.found.append(Found(rel, folder, store))
            continue  # a model folder's subfolders are its parts
        for path in _gguf_files(entries):
            prefix = f"{rel}/" if folder != root else ""
            search.found.append(Found(prefix + path.name.removesuffix(".gguf"), path, store))
        if depth < max_depth:
            subdirs = [Path(e.path) for e in entries if _is_dir(e) and not e.name.startswith(".")]
            stack.extend((d, depth + 1) for d in reversed(subdirs))


# --- the Hugging Face hub cache ---------------------------------------------------


def _snapshot(repo_dir: Path) -> Path | None:
    snaps = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    try:
        if ref.is_file() and ref.stat().st_size < 256:
            rev = ref.read_text(encoding="ascii", errors="replace").strip()
            if rev and "/" not in rev and (snaps / rev).is_dir():
                return snaps / rev
        candidates = [p for p in snaps.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def _hf_cache(root: Path, store: str, search: Search) -> None:
    budget = _Budget()
    for entry in _entries(root, budget, search):
        if not entry.name.startswith("models--") or not _is_dir(entry):
            continue
        repo = entry.name.removeprefix("models--").replace("--", "/", 1)
        snap = _snapshot(Path(entry.path))
        if snap is None:
            search.skipped.append(Skipped(entry.path, "no snapshot (an unfinished download?)"))
            continue
        before = len(search.found)
        _snapshot_models(snap, repo, store, search, budget)
        if len(search.found) == before:
            search.skipped.append(
                Skipped(str(snap), "no config.json with weights and no GGUF file")
            )


def _snapshot_models(snap: Path, repo: str, store: str, search: Search, budget: _Budget) -> None:
    stack: list[tuple[Path, int]] = [(snap, 0)]
    while stack:
        folder, depth = stack.pop()
        entries = _entries(folder, budget, search)
        names = {e.name for e in entries if _is_file(e)}
        if folder == snap and _is_model_folder(names):
            search.found.append(Found(repo, folder, store))
            return
        for path in _gguf_files(entries):
            search.found.append(Found(f"{repo}:{path.name.removesuffix('.gguf')}", path, store))
        if depth < 3:
            stack.extend((Path(e.path), depth + 1) for e in entries if _is_dir(e))


# --- Ollama ------------------------------------------------------------------------


def ollama_name(parts: tuple[str, ...]) -> str:
    """manifests/REGISTRY/NAMESPACE/MODEL/TAG as ``ollama list`` shows it."""
    registry, namespace, model, tag = parts
    if registry == "registry.ollama.ai":
        base = model if namespace == "library" else f"{namespace}/{model}"
    else:
        base = f"{registry}/{namespace}/{model}"
    return f"{base}:{tag}"


def _blob(root: Path, digest: object) -> Path | None:
    if not isinstance(digest, str) or not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
        return None
    return root / "blobs" / digest.replace(":", "-")


def _ollama(root: Path, store: str, search: Search) -> None:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    budget = _Budget()
    for path, parts in _manifest_files(manifests, budget, search):
        try:
            data = read_json(path, MANIFEST_BYTES)
        except ModelFileError as exc:
            search.skipped.append(Skipped(str(path), exc.problem))
            continue
        layers = data.get("layers") if isinstance(data, dict) else None
        if not isinstance(layers, list):
            search.skipped.append(Skipped(str(path), "not an Ollama manifest (no layers)"))
            continue
        by_type = {
            layer.get("mediaType"): layer.get("digest")
            for layer in layers
            if isinstance(layer, dict)
        }
        blob = _blob(root, by_type.get(MODEL_LAYER))
        if blob is None:
            search.skipped.append(Skipped(str(path), "the manifest names no model blob"))
            continue
        if not blob.is_file():
            search.skipped.append(Skipped(str(path), f"its model blob {blob.name} is missing"))
            continue
        projector = _blob(root, by_type.get(PROJECTOR_LAYER))
        search.found.append(
            Found(
                ollama_name(parts),
                blob,
                store,
                projector if projector and projector.is_file() else None,
            )
        )


def _manifest_files(
    manifests: Path, budget: _Budget, search: Search
) -> Iterator[tuple[Path, tuple[str, str, str, str]]]:
    for reg in _entries(manifests, budget, search):
        if not _is_dir(reg):
            continue
        for ns in _entries(Path(reg.path), budget, search):
            if not _is_dir(ns):
                continue
            for model in _entries(Path(ns.path), budget, search):
                if not _is_dir(model):
                    continue
                for tag in _entries(Path(model.path), budget, search):
                    if _is_file(tag):
                        yield Path(tag.path), (reg.name, ns.name, model.name, tag.name)
