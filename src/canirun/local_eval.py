"""Models on disk, read and rated: ``canirun check PATH`` and ``canirun local``.

The glue between the file readers (``catalog.gguf_model``, ``catalog.hf_folder``,
``catalog.local_find``) and the estimator (``estimate.local``). A query that
names something on disk is a path; any other query keeps its catalog meaning.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from canirun.errors import InputError

if TYPE_CHECKING:  # `check NAME` asks is_path_query and reads no file (start-up time)
    from canirun.catalog.local_find import Found, Search
    from canirun.catalog.local_model import LocalModel

_PATHLIKE = ("/", "./", "../", "~", ".\\", "..\\")
_SUFFIXES = (".gguf", ".safetensors", ".bin")


def is_path_query(query: str, catalog_names: Callable[[], Iterable[str]] | None = None) -> bool:
    """Whether ``query`` means a file or folder: it exists, or it can only be a path. A
    name that only ends like a model file ("af3.bin") and is one of ``catalog_names``
    (asked only then) is the catalog's name."""
    q = query.strip()
    if not q:
        return False
    if os.path.lexists(os.path.expanduser(q)):
        return True
    if q.startswith(_PATHLIKE):
        return True
    if not q.lower().endswith(_SUFFIXES):
        return False
    return catalog_names is None or q.lower() not in {n.lower() for n in catalog_names()}


def _magic(path: Path) -> bytes:
    from canirun.catalog.local_model import open_regular

    stream, _ = open_regular(path)
    with stream:
        return stream.read(4)


def read_path(path: Path, name: str | None = None) -> LocalModel:
    """A GGUF file, a safetensors file, a model folder, or an HF cache repo folder."""
    from canirun.catalog import gguf_model, hf_folder
    from canirun.catalog.local_model import ModelFileError

    if not os.path.lexists(path):
        raise ModelFileError(path, "no such file or folder")
    if path.is_dir():
        snapshot = _cache_repo_snapshot(path)
        if snapshot is not None:
            repo = path.name.removeprefix("models--").replace("--", "/", 1)
            return hf_folder.hf_folder_model(snapshot, name or repo)
        if not (path / "config.json").exists() and not (path / "model_index.json").exists():
            ggufs = sorted(path.glob("*.gguf"))
            hint = (
                f" (it holds {len(ggufs)} GGUF files: name one)"
                if ggufs
                else "; `canirun local --models-dir DIR` finds the models below a folder"
            )
            raise ModelFileError(path, f"no config.json here, not a model folder{hint}")
        return hf_folder.hf_folder_model(path, name)
    if path.name.lower().endswith(".gguf") or _magic(path) == b"GGUF":
        return gguf_model.gguf_model(path, name)
    if path.name.endswith(".safetensors"):
        return _single_safetensors(path, name)
    raise ModelFileError(path, "not a GGUF, safetensors file or model folder")


def _cache_repo_snapshot(path: Path) -> Path | None:
    if not path.name.startswith("models--") or not (path / "snapshots").is_dir():
        return None
    from canirun.catalog.local_find import _snapshot

    return _snapshot(path)


def _single_safetensors(path: Path, name: str | None) -> LocalModel:
    """A lone safetensors file: its folder when it has a config.json, else weights only."""
    from canirun.catalog import hf_folder
    from canirun.catalog.local_model import LocalModel, ModelFileError

    if (path.parent / "config.json").is_file():
        return hf_folder.hf_folder_model(path.parent, name)
    t = hf_folder.read_tensors([path])
    if not t.total:
        raise ModelFileError(path, "the file holds no tensors")
    return LocalModel(
        name=name or path.name.removesuffix(".safetensors"),
        path=str(path),
        format="safetensors",
        kind="llm",
        precision=hf_folder._precision({}, t),
        weights_bytes=t.total,
        params=t.elements,
        arch_missing="no config.json next to the file (layers, heads, context)",
        files=t.files,
    )


def read_found(found: Found) -> LocalModel:
    model = read_path(found.path, found.name)
    if found.projector is not None:
        model = _with_projector(model, found.projector)
    return model


def _with_projector(model: LocalModel, projector: Path) -> LocalModel:
    """Ollama's vision models: the projector blob is loaded too; its bytes count."""
    from canirun.catalog.gguf_model import read_header
    from canirun.units import format_bytes

    extra = sum(t.bytes for t in read_header(projector).tensors)
    note = f"vision projector: {format_bytes(extra)} more ({projector.name[:19]})"
    return dataclasses.replace(
        model,
        kind="vlm" if model.kind == "llm" else model.kind,
        weights_bytes=model.weights_bytes + extra,
        files=(*model.files, str(projector)),
        notes=(*model.notes, note),
    )


def read_query(query: str) -> LocalModel:
    """``check PATH``: one clear line (exit 2) for anything unreadable."""
    from canirun.catalog.local_model import ModelFileError

    try:
        return read_path(Path(os.path.expanduser(query.strip())))
    except ModelFileError as exc:
        raise InputError(f"check: {exc}") from None
    except OSError as exc:
        raise InputError(f"check: {query}: cannot read it: {exc.strerror or exc}") from None


def search_local(env: Mapping[str, str], models_dirs: tuple[Path, ...]) -> Search:
    from canirun.catalog.local_find import find_models

    for d in models_dirs:
        if not d.expanduser().is_dir():
            raise InputError(f"--models-dir {d}: not a folder")
    return find_models(env, models_dirs)


def read_all(search: Search, *, cache: bool = True) -> list[tuple[Found, LocalModel]]:
    """Every found model's headers (from the header cache when nothing changed);
    unreadable ones join ``search.skipped``."""
    from canirun.catalog.header_cache import HeaderCache
    from canirun.catalog.local_find import Skipped
    from canirun.catalog.local_model import ModelFileError

    store = HeaderCache() if cache else None
    out = []
    for found in search.found:
        key = f"{found.store}|{found.name}|{found.path}|{found.projector}"
        hit = store.get(key) if store else None
        if hit is not None:
            out.append((found, hit))
            continue
        try:
            model = read_found(found)
        except ModelFileError as exc:
            search.skipped.append(Skipped(exc.path, exc.problem))
            continue
        except OSError as exc:
            search.skipped.append(
                Skipped(str(found.path), f"cannot read it: {exc.strerror or exc}")
            )
            continue
        except Exception as exc:  # one strange file must not end the walk over all the others
            problem = f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
            search.skipped.append(Skipped(str(found.path), problem))
            continue
        if store:
            store.put(key, model, str(found.path))
        out.append((found, model))
    if store:
        store.save()
    return out


def unique_ids(names: list[str]) -> list[str]:
    """Model ids for the report: the names, with a counter where two are the same."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def is_repo_id(query: str) -> bool:
    """ORG/NAME (optionally :QUANT, hf.co/ or a Hub URL) that is not a file here."""
    from canirun.catalog.hub import parse_repo

    return parse_repo(query) is not None and not os.path.lexists(os.path.expanduser(query))


def read_hub(query: str) -> LocalModel:
    """``check ORG/NAME --online``: the Hub's headers, one clear line for any failure."""
    from canirun.catalog.hub import HubError, hub_model
    from canirun.catalog.local_model import ModelFileError

    try:
        return hub_model(query)
    except (HubError, ModelFileError) as exc:
        raise InputError(f"check --online: {exc}") from None
