"""Read the shipped catalog and the user's extra files, once per process.

Shipped files come from the package (compiled.package_files), user files from
``<user config dir>/catalog.d/*.toml`` and ``--catalog FILE``. Every file is
validated against ``schema.CatalogFile``; a problem becomes an ``InputError``
naming the file, the entry and the field. A user entry whose id clashes with a
shipped one is refused, never silently preferred.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec

from canirun.catalog.compiled import (  # noqa: F401  (re-exported for scripts)
    COMPILED,
    SHIPPED,
    _precompiled,
    _shipped_files,
    compiled_document,
    package_files,
    shipped_detect_specs,
    sources_digest,
)
from canirun.catalog.schema import Backend, CatalogFile, Framework, Gpu, Model, Variant
from canirun.errors import InputError
from canirun.inputs import CATALOG_LIMIT, ParseRefused, parse_toml, read_bounded
from canirun.records import Record, record


class VariantRef(msgspec.Struct, frozen=True):
    """One model variant, with the model it belongs to: the unit canirun rates."""

    model: Model
    variant: Variant

    @property
    def id(self) -> str:
        return f"{self.model.id}-{self.variant.key}"


@record()
class Catalog(Record):
    models: tuple[Model, ...]
    frameworks: tuple[Framework, ...]
    gpus: tuple[Gpu, ...]
    origin: dict[str, str] = field(default_factory=dict, compare=False)
    backends: tuple[Backend, ...] = ()
    # Files of the user's catalog.d/ that were skipped, and why (the CLI prints them).
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # Shipped variant id -> GGUF file type -> its layout, precomputed in compiled.json
    # (estimate.gguf.encode_layout); empty when the TOML was parsed instead.
    gguf_layouts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    # Shipped variant id -> GGUF file type -> llama.cpp's x86 decode cycles per token
    # (estimate.speed.x86_decode_cycles), precomputed in compiled.json likewise.
    decode_cycles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    # A shipped name or alias -> its normalised form (resolve.normalize), precomputed in
    # compiled.json, so `check` does not normalise ~1,900 names per run (issue 15).
    name_forms: Mapping[str, str] = field(default_factory=dict, compare=False)

    def variants(self) -> Iterator[VariantRef]:
        for model in self.models:
            for variant in model.variants:
                yield VariantRef(model, variant)

    @functools.cached_property
    def framework_by_id(self) -> dict[str, Framework]:
        return {f.id: f for f in self.frameworks}

    @functools.cached_property
    def variant_by_id(self) -> dict[str, VariantRef]:
        return {ref.id: ref for ref in self.variants()}


def user_catalog_dir() -> Path:
    """<user config dir>/catalog.d; a relative "~" path when there is no home directory."""
    from canirun.userdirs import user_config_dir

    try:
        return Path(user_config_dir()) / "catalog.d"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry for this uid
        return Path("~/.config/canirun/catalog.d")


def _read_user_file(path: Path) -> tuple[str, str]:
    raw = read_bounded(path, CATALOG_LIMIT, f"catalog file {path}")
    try:
        return str(path), raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"catalog file {path}: cannot read it: {exc}") from None


def _user_files(folder: Path) -> list[Path]:
    """The *.toml files of catalog.d; a folder that cannot be listed has none."""
    if not folder.is_absolute():  # no home directory: "~" was left unexpanded
        return []
    try:
        if not folder.is_dir():
            return []
        return sorted(folder.glob("*.toml"))
    except (OSError, ValueError):  # EACCES on a parent, a name too long
        return []


def _entry_label(raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and isinstance(loc[1], int):
        table = raw.get(str(loc[0]))
        if isinstance(table, list) and loc[1] < len(table) and isinstance(table[loc[1]], dict):
            entry_id = table[loc[1]].get("id")
            if entry_id is not None:
                return f"{loc[0]} {entry_id!r}"
        return f"{loc[0]} #{loc[1] + 1}"
    return "top level"


def _parse(name: str, text: str, raw: Any = None) -> CatalogFile:
    if raw is None:
        try:
            raw = parse_toml(text)
        except ParseRefused as exc:
            raise InputError(f"catalog file {name}: {exc}") from None
        except ValueError as exc:  # TOMLDecodeError
            raise InputError(f"catalog file {name}: not valid TOML: {exc}") from None
    from pydantic import ValidationError

    from canirun.catalog.constraints import problem, validated

    try:
        return validated(CatalogFile, raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc[2:]) or str(loc[0] if loc else "")
        extra = exc.error_count() - 1
        more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
        raise InputError(
            f"catalog file {name}: {_entry_label(raw, loc)}: {where}: {problem(err)}{more}"
        ) from None


def _merge(parsed: Iterable[tuple[str, CatalogFile]], warnings: tuple[str, ...] = ()) -> Catalog:
    models: list[Model] = []
    frameworks: list[Framework] = []
    gpus: list[Gpu] = []
    backends: list[Backend] = []
    origin: dict[str, str] = {}

    def claim(kind: str, entry_id: str, name: str) -> None:
        key = f"{kind}:{entry_id}"
        if key in origin:
            raise InputError(
                f"catalog file {name}: {kind} {entry_id!r} is already defined in {origin[key]}"
            )
        origin[key] = name

    for name, content in parsed:
        for model in content.model:
            claim("model", model.id, name)
            for variant in model.variants:
                claim("variant", f"{model.id}-{variant.key}", name)
                # One Ollama tag pulls one model: a tag on two variants is an error.
                for tag in variant.ollama.tags if variant.ollama else ():
                    claim("ollama tag", tag, name)
            models.append(model)
        for fw in content.framework:
            claim("framework", fw.id, name)
            frameworks.append(fw)
        for gpu in content.gpu:
            claim("gpu", gpu.id, name)
            gpus.append(gpu)
        for backend in content.backend:
            claim("backend", backend.id, name)
            backends.append(backend)
    catalog = Catalog(
        tuple(models), tuple(frameworks), tuple(gpus), origin, tuple(backends), warnings
    )
    _check_references(catalog)
    return catalog


def _merge_skipping(parsed: list[tuple[str, CatalogFile, bool]], warnings: list[str]) -> Catalog:
    """Merge; a problem in an optional file (catalog.d/) drops that file with a warning,
    a problem in a file the user named (--catalog) or a shipped one stops here."""
    while True:
        try:
            return _merge([(n, c) for n, c, _ in parsed], tuple(warnings))
        except InputError as exc:
            culprit = next(
                (
                    i
                    for i, (n, _, optional) in enumerate(parsed)
                    if optional and str(exc).startswith(f"catalog file {n}:")
                ),
                None,
            )
            if culprit is None:
                raise
            warnings.append(f"{exc}; file skipped")
            del parsed[culprit]


def _check_references(catalog: Catalog) -> None:
    known = catalog.framework_by_id
    for model in catalog.models:
        names = list(model.frameworks)
        names += [r.framework for v in model.variants for r in v.requirements if r.framework]
        for fw in names:
            if fw not in known:
                where = catalog.origin.get(f"model:{model.id}", "?")
                raise InputError(
                    f"catalog file {where}: model {model.id!r}: frameworks: "
                    f"unknown framework {fw!r}"
                )
    for backend in catalog.backends:
        named = [*backend.frameworks, *(t.framework for t in backend.targets)]
        for fw in named:
            if fw not in known:
                where = catalog.origin.get(f"backend:{backend.id}", "?")
                raise InputError(
                    f"catalog file {where}: backend {backend.id!r}: unknown framework {fw!r}"
                )


# The shipped files already validated, pickled by scripts/compile_catalog.py with their
# layouts and decode cycles. It is the package's own data, written by the same build as its
# code, and used only while its stamp matches: the TOML files' digest, the text of the
# schema's records and constraints, the Python version. Anything else (a stale or unreadable
# file) validates the TOML. The records are plain dataclasses: the pickle needs no pydantic.
VALIDATED = "catalog.pickle"


def validated_stamp(files: list[tuple[str, str]]) -> dict[str, str]:
    import sys

    from canirun.sha import fingerprint

    code = b"".join(
        package_files().joinpath(name).read_bytes() + b"\0"
        for name in ("schema.py", "constraints.py")
    )
    return {
        "digest": sources_digest(files),
        "schema": fingerprint(code),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    }


def validated_pickle(files: list[tuple[str, str]], compiled: dict[str, Any]) -> bytes:
    """catalog.pickle's content for compiled.json's document (scripts/compile_catalog.py):
    the shipped files validated, with the layouts, decode cycles and name forms, under the
    stamp that validated_document checks."""
    import json

    # From the JSON as written (keys sorted), exactly as _parse sees compiled.json.
    raw = json.loads(json.dumps(compiled["files"], sort_keys=True))
    document = {
        "files": {name: _parse(name, "", raw[name]) for name, _ in files},
        "gguf_layouts": compiled.get("gguf_layouts", {}),
        "decode_cycles": compiled.get("decode_cycles", {}),
        "name_forms": compiled.get("name_forms", {}),
    }
    return stamped_pickle(validated_stamp(files), document)


def stamped_pickle(stamp: dict[str, str], document: object) -> bytes:
    """A validated document under its stamp, read back by stamped_document."""
    import pickle

    payload = pickle.dumps(document, protocol=5)
    return pickle.dumps((stamp, payload), protocol=5)


def stamped_document(
    raw: bytes, stamp: dict[str, str], module: ModuleType, base: type, holder: str, what: str
) -> Any:
    """The document stamped_pickle wrote, when it carries ``stamp``; else None (stale,
    unreadable, or holding anything but ``module``'s ``base`` classes and plain values)."""
    UnpicklingError = _pickle_module().UnpicklingError

    try:
        found, payload = restricted_loads(raw, module, base, holder, what)  # str dict, bytes
        if found != stamp:
            return None
        return restricted_loads(payload, module, base, holder, what)
    except (EOFError, ValueError, TypeError, AttributeError, UnpicklingError):
        return None


def _unpickle(data: bytes) -> Any:
    """pickle.loads that can build nothing but catalog entries (the schema's own classes)
    and plain values: no other class or function is reachable, so a tampered file cannot
    run code (the "restricting globals" recipe of the pickle documentation)."""
    from canirun.catalog import schema

    return restricted_loads(data, schema, schema.Strict, f"{VALIDATED} holds", "catalog entry")


def restricted_loads(data: bytes, module: ModuleType, base: type, holder: str, what: str) -> Any:
    """pickle.loads that can build only ``module``'s subclasses of ``base``, and plain values.
    The one place canirun unpickles (the package's own validated data, tests/test_reliability)."""
    import io

    pickle = _pickle_module()

    class Restricted(pickle.Unpickler):  # type: ignore[misc,name-defined]  # _pickle: untyped
        def find_class(self, name_of_module: str, name: str) -> Any:
            found = getattr(module, name, None) if name_of_module == module.__name__ else None
            if isinstance(found, type) and issubclass(found, base):
                return found
            raise pickle.UnpicklingError(f"{holder} {name_of_module}.{name}, not a {what}")

    return Restricted(io.BytesIO(data)).load()


def _pickle_module() -> Any:
    """CPython's C pickle module, whose Unpickler and UnpicklingError `pickle` re-exports:
    reading a pickle needs nothing else, and `pickle` itself takes about a millisecond more
    to import (its pure-Python pickler; issue 15). `pickle` where there is no such module."""
    try:
        import _pickle

        return _pickle
    except ImportError:  # pragma: no cover (another interpreter)
        import pickle

        return pickle


def validated_document(files: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The pickled validated catalog when it is current for these files, else None."""
    from canirun.catalog import schema

    try:
        raw = package_files().joinpath("data", VALIDATED).read_bytes()
    except OSError:
        return None
    holder = f"{VALIDATED} holds"
    stamp = validated_stamp(files)
    document = stamped_document(raw, stamp, schema, schema.Strict, holder, "catalog entry")
    ok = isinstance(document, dict) and isinstance(document.get("files"), dict)
    return document if ok and {n for n, _ in files} == set(document["files"]) else None


@functools.lru_cache(maxsize=8)
def load_catalog(extra_files: tuple[str, ...] = (), *, user_dir: bool = True) -> Catalog:
    """The shipped catalog plus user files; cached per process and arguments."""
    shipped = _shipped_files()
    document = validated_document(shipped)
    if document is not None:
        parsed = [(name, document["files"][name], False) for name, _ in shipped]
    else:
        document = compiled_document(shipped) or {}
        compiled = document.get("files") or {}
        parsed = [(name, _parse(name, text, compiled.get(name)), False) for name, text in shipped]
    warnings: list[str] = []
    if user_dir:
        # One broken file in catalog.d/ must not stop every command: it is skipped,
        # and said so. A file named with --catalog is the user's explicit input: exit 2.
        for path in _user_files(user_catalog_dir()):
            try:
                name, text = _read_user_file(path)
                parsed.append((name, _parse(name, text), True))
            except InputError as exc:
                warnings.append(f"{exc}; file skipped")
    for extra in extra_files:
        name, text = _read_user_file(Path(extra))
        parsed.append((name, _parse(name, text), False))
    catalog = _merge_skipping(parsed, warnings)
    layouts = document.get("gguf_layouts")
    cycles = document.get("decode_cycles")
    forms = document.get("name_forms")
    return replace(
        catalog,
        gguf_layouts=layouts if isinstance(layouts, dict) else {},
        decode_cycles=cycles if isinstance(cycles, dict) else {},
        name_forms=forms if isinstance(forms, dict) else {},
    )
