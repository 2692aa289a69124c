"""What `canirun local` read from each model's headers, kept between runs.

Reading a GGUF header means getting past its tokenizer (hundreds of thousands
of strings, ~10 ms a file); a cache keyed by every file's path, size and
modification time makes the next run read only what changed. It lives in the user cache directory
(``~/.cache/canirun/local-headers.json`` on Linux), is written atomically, holds
at most ``MAX_ENTRIES`` models, and is ignored when unreadable or from another
canirun version: it can only save time, never change an answer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from canirun.catalog.local_model import LocalModel
from canirun.catalog.schema import Arch, Encoder

FORMAT = 1  # bump when a reader's output changes
MAX_ENTRIES = 5000
MAX_BYTES = 64 * 2**20


def cache_file() -> Path:
    from canirun.userdirs import user_cache_dir

    return Path(user_cache_dir()) / "local-headers.json"


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _version() -> str:
    from canirun import __version__

    return f"{__version__}/{FORMAT}"


class HeaderCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_file()
        self.entries: dict[str, dict[str, Any]] = {}
        self.used: dict[str, dict[str, Any]] = {}
        self.hits = 0
        try:
            if self.path.stat().st_size <= MAX_BYTES:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("version") == _version():
                    self.entries = dict(data.get("models") or {})
        except (OSError, ValueError, RecursionError, AttributeError, TypeError):
            self.entries = {}

    def get(self, key: str) -> LocalModel | None:
        entry = self.entries.get(key)
        if not isinstance(entry, dict):
            return None
        stamps = entry.get("stamps")
        if not isinstance(stamps, dict) or not stamps:
            return None
        if any(_stamp(f) != s for f, s in stamps.items()):
            return None
        try:
            model = _load(entry["model"])
        except (KeyError, TypeError, ValueError):
            return None
        self.used[key] = entry
        self.hits += 1
        return model

    def put(self, key: str, model: LocalModel, anchor: str) -> None:
        """Remember ``model``, valid while ``anchor`` (the file or folder found) and every
        file it was read from keep their size and modification time."""
        stamps = {f: _stamp(f) for f in (anchor, *model.files)}
        if all(s is not None for s in stamps.values()):
            self.used[key] = {"stamps": stamps, "model": _dump(model)}

    def save(self) -> None:
        """Keep what this run used (so models that are gone drop out); failures are ignored."""
        if not self.used or (self.used.keys() == self.entries.keys() and not self._changed()):
            return
        models = dict(list(self.used.items())[:MAX_ENTRIES])
        text = json.dumps({"version": _version(), "models": models})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass

    def _changed(self) -> bool:
        return any(self.entries.get(k) != v for k, v in self.used.items())


def _dump(model: LocalModel) -> dict[str, Any]:
    return dataclasses.asdict(model)  # the Arch and Encoder records too


def _load(data: dict[str, Any]) -> LocalModel:
    from canirun.catalog.constraints import validated

    fields = dict(data)
    # The cache is a file anyone could edit: its records are validated as a model file's.
    fields["arch"] = validated(Arch, data["arch"]) if data.get("arch") else None
    fields["encoder"] = validated(Encoder, data["encoder"]) if data.get("encoder") else None
    for name in ("layer_bytes", "files", "notes"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    return LocalModel(**fields)
