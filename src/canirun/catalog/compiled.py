"""The shipped catalog's files and their pre-parsed form (compiled.json), without pydantic.

`canirun hardware` needs the frameworks' detection specs and must start fast, so this
module imports neither pydantic nor the schema; `loader` validates the same data.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SHIPPED = "<shipped>"


def package_files() -> Traversable:
    """The canirun.catalog package's files, as ``importlib.resources.files`` gives them:
    the folder itself where the package is plain files (every pip install), without
    importing importlib.resources, which imports tempfile, shutil and random (about 5 ms
    of `canirun hardware`'s start, issue 15). Anything else (a zip) asks importlib."""
    if os.path.isfile(__file__):
        from pathlib import Path

        return Path(__file__).parent
    from importlib import resources

    return resources.files("canirun.catalog")


COMPILED = "compiled.json"


def _shipped_files() -> list[tuple[str, str]]:
    data = package_files().joinpath("data")
    files = sorted((p for p in data.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    return [(f"{SHIPPED}/{p.name}", p.read_text(encoding="utf-8")) for p in files]


def sources_digest(files: list[tuple[str, str]]) -> str:
    from canirun.sha import fingerprint

    return fingerprint(
        b"".join(name.encode() + b"\0" + text.encode() + b"\0" for name, text in files)
    )


def _precompiled(files: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The shipped TOML already parsed into JSON (tomllib is pure Python and slow);
    used only while its digest matches the TOML files, which stay the source of truth."""
    parsed = (compiled_document(files) or {}).get("files")
    return parsed if isinstance(parsed, dict) else None


def compiled_document(files: list[tuple[str, str]]) -> dict[str, Any] | None:
    """compiled.json whole: the parsed files and, per shipped variant, the GGUF layouts
    worked out from them (scripts/compile_catalog.py); None when stale or unreadable."""
    import json

    try:
        text = package_files().joinpath("data", COMPILED).read_text("utf-8")
        compiled = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(compiled, dict) or compiled.get("digest") != sources_digest(files):
        return None
    return compiled


DETECT = "detect.json"


def detect_document(files: list[tuple[str, str]]) -> dict[str, Any]:
    """detect.json's content for these shipped files: the frameworks' detection specs and a
    digest of only the files that define frameworks (scripts/compile_catalog.py writes it)."""
    parsed = {name: _frameworks(text) for name, text in files}
    sources = [(name, text) for name, text in files if parsed[name]]
    specs = [spec for name, _ in sources for spec in parsed[name]]
    return {
        "files": [name for name, _ in sources],
        "digest": sources_digest(sources),
        "specs": specs,
    }


def _frameworks(text: str) -> list[list[Any]]:
    import tomllib

    out = []
    for fw in tomllib.loads(text).get("framework", []):
        found = fw.get("detect", {})
        out.append([fw["id"], list(found.get("commands", [])), list(found.get("python", []))])
    return out


def _small_detect() -> list[tuple[str, list[str], list[str]]] | None:
    """The specs from detect.json while the few files it names are unchanged: the probe
    then reads one small TOML file instead of the whole catalog and compiled.json."""
    import json

    try:
        data = package_files().joinpath("data", DETECT)
        doc = json.loads(data.read_text("utf-8"))
        folder = package_files().joinpath("data")
        names = [str(n) for n in doc["files"]]
        files = [
            (n, folder.joinpath(n.removeprefix(f"{SHIPPED}/")).read_text("utf-8")) for n in names
        ]
        if doc["digest"] != sources_digest(files):
            return None
        return [(str(i), list(c), list(p)) for i, c, p in doc["specs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def shipped_detect_specs() -> list[tuple[str, list[str], list[str]]]:
    """How to spot each shipped framework (id, commands, Python packages), for the probe.

    Read without pydantic, from detect.json (or the compiled JSON), so `canirun hardware`
    stays fast; the same figures are validated when the catalog loads (a test keeps the two
    equal, another that detect.json is current).
    """
    small = _small_detect()
    if small is not None:
        return small
    shipped = _shipped_files()
    compiled = _precompiled(shipped)
    if compiled is None:
        import tomllib

        compiled = {name: tomllib.loads(text) for name, text in shipped}
    out = []
    for data in compiled.values():
        for fw in data.get("framework", []):
            found = fw.get("detect", {})
            out.append((fw["id"], list(found.get("commands", [])), list(found.get("python", []))))
    return out
