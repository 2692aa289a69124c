"""What really runs where, and the runtime defaults canirun assumes: two data tables.

``rules/capabilities.toml`` says which precisions each framework runs on each kind of
device (NVIDIA by compute capability, AMD by gfx target, Apple, Intel, the CPU by
instruction set); ``rules/runtime-defaults.toml`` records runtime defaults with the
version they apply from. Both are validated here (unknown keys are errors) and read
once per process. ``supports`` answers one question and says which entry decided it.
"""

from __future__ import annotations

from dataclasses import field
from functools import cache
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from canirun.catalog.compiled import package_files
from canirun.catalog.schema import Strict, entry

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from pydantic import Field

    from canirun.catalog.constraints import ComputeCapability, Day

DeviceKind = Literal["nvidia", "amd", "apple", "intel", "cpu"]
# Stands for every GGUF/GGML file type (Q4_K_M, Q8_0, F16 ...).
GGML = "ggml"


# Frozen records, validated by pydantic only when a table is read from its TOML
# (constraints.validated): runs read rules.pickle (see _tables).
@entry
class Capability(Strict):
    frameworks: Annotated[list[str], Field(min_length=1)]
    device: DeviceKind
    min_cc: ComputeCapability | None = None
    below_cc: ComputeCapability | None = None
    archs: Annotated[list[str], Field(description="AMD gfx targets; empty: any")] = field(
        default_factory=list
    )
    cpu_flags: Annotated[list[str], Field(description="any of these; empty: any")] = field(
        default_factory=list
    )
    precisions: Annotated[list[str], Field(min_length=1)]
    how: str
    source: str
    checked: Day


@entry
class CapabilityFile(Strict):
    sources: dict[str, str]
    entry: list[Capability]

    def __post_init__(self) -> None:
        for e in self.entry:
            if e.source not in self.sources:
                raise ValueError(f"entry for {e.frameworks} names unknown source {e.source!r}")


@entry
class RuntimeDefault(Strict):
    framework: str
    setting: str
    value: str
    since: str
    used: str
    source: str
    checked: Day


@entry
class DefaultsFile(Strict):
    sources: dict[str, str]
    default: list[RuntimeDefault]

    def __post_init__(self) -> None:
        for d in self.default:
            if d.source not in self.sources:
                raise ValueError(f"{d.framework} {d.setting}: unknown source {d.source!r}")


TABLES = ("capabilities.toml", "runtime-defaults.toml")
# The two tables validated, pickled by scripts/compile_catalog.py, used only while its stamp
# matches (as catalog.pickle): the tables' text, the code of their records (this module,
# the schema's base and constraints) and the Python version. Anything else validates the
# TOML. The records are plain dataclasses, so the pickle does not depend on pydantic.
VALIDATED = "rules.pickle"
CODE = ("rules.py", "schema.py", "constraints.py")


def _folder() -> Traversable:
    return package_files().joinpath("rules")


def _read(name: str) -> object:
    import tomllib  # only when the validated tables are stale (start-up time)

    return tomllib.loads(_folder().joinpath(name).read_text("utf-8"))


def validated_stamp() -> dict[str, str]:
    import sys

    from canirun.sha import fingerprint

    tables = b"".join(_folder().joinpath(name).read_bytes() + b"\0" for name in TABLES)
    code = b"".join(package_files().joinpath(name).read_bytes() + b"\0" for name in CODE)
    return {
        "tables": fingerprint(tables),
        "code": fingerprint(code),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    }


def validated_pickle() -> bytes:
    """rules.pickle's content (scripts/compile_catalog.py): both tables, validated."""
    from canirun.catalog.loader import stamped_pickle

    table, defaults = _from_toml()
    tables = {"capabilities.toml": table, "runtime-defaults.toml": defaults}
    return stamped_pickle(validated_stamp(), tables)


Tables = tuple["CapabilityFile", "DefaultsFile"]


def validated_tables() -> Tables | None:
    """The pickled tables when they are current, else None."""
    import sys

    from canirun.catalog.loader import stamped_document

    try:
        raw = _folder().joinpath(VALIDATED).read_bytes()
    except OSError:
        return None
    me, holder = sys.modules[__name__], f"{VALIDATED} holds"
    tables = stamped_document(raw, validated_stamp(), me, Strict, holder, "rule table")
    if not isinstance(tables, dict):
        return None
    table, defaults = tables.get("capabilities.toml"), tables.get("runtime-defaults.toml")
    if isinstance(table, CapabilityFile) and isinstance(defaults, DefaultsFile):
        return table, defaults
    return None


def _from_toml() -> Tables:
    from canirun.catalog.constraints import validated

    return (
        validated(CapabilityFile, _read("capabilities.toml")),
        validated(DefaultsFile, _read("runtime-defaults.toml")),
    )


@cache
def _tables() -> Tables:
    return validated_tables() or _from_toml()


def capabilities() -> CapabilityFile:
    return _tables()[0]


def runtime_defaults() -> DefaultsFile:
    return _tables()[1]


class Device(msgspec.Struct, frozen=True):
    """The device a placement runs on, as the capability table sees it."""

    kind: DeviceKind
    compute_capability: str | None = None  # NVIDIA
    arch: str | None = None  # AMD gfx target, when probed
    cpu_flags: frozenset[str] | None = None  # None: not read

    @property
    def label(self) -> str:
        if self.kind == "nvidia" and self.compute_capability:
            return f"NVIDIA compute capability {self.compute_capability}"
        if self.kind == "cpu":
            return "the CPU"
        return {"amd": "AMD GPUs", "apple": "Apple GPUs", "intel": "Intel GPUs"}.get(
            self.kind, self.kind
        ) + (f" ({self.arch})" if self.arch else "")


class Support(msgspec.Struct, frozen=True):
    runs: bool
    how: str
    source: str | None = None
    # Runs only if a figure the probe could not read allows it (an unknown compute
    # capability against a minimum): the caller must not count that as a fit.
    doubt: str | None = None


def _cc(text: str | None) -> tuple[int, int] | None:
    """ "8.9" -> (8, 9); None for an unknown or garbled compute capability."""
    if text is None:
        return None
    major, _, minor = text.strip().partition(".")
    for part in (major, minor or "0"):
        if not (part.isascii() and part.isdigit() and len(part) <= 3):
            return None
    return int(major), int(minor or 0)


def _device_matches(e: Capability, d: Device) -> bool:
    if e.device != d.kind:
        return False
    cc = _cc(d.compute_capability)
    # An unknown compute capability is not refused here; supports() marks the
    # answer as a doubt so that it never counts as a fit.
    low, high = _cc(e.min_cc), _cc(e.below_cc)
    if cc is not None and low is not None and cc < low:
        return False
    if cc is not None and high is not None and cc >= high:
        return False
    if e.archs and (d.arch is None or d.arch not in e.archs):
        return False
    return not (e.cpu_flags and d.cpu_flags is not None and not d.cpu_flags & set(e.cpu_flags))


def supports(
    framework: str, device: Device, precision: str, family: str, table: CapabilityFile | None = None
) -> Support:
    """Can ``framework`` run ``precision`` (of ``family`` ggml/torch) on ``device``?"""
    if table is None:  # the shipped table: the same question comes for every model
        return _shipped_supports(framework, device, precision, family)
    return _supports(framework, device, precision, family, table)


@cache
def _shipped_supports(framework: str, device: Device, precision: str, family: str) -> Support:
    return _supports(framework, device, precision, family, capabilities())


def _supports(
    framework: str, device: Device, precision: str, family: str, table: CapabilityFile
) -> Support:
    if not any(framework in e.frameworks for e in table.entry):
        # A framework the table does not cover yet: frameworks.toml alone decides.
        return Support(True, f"{framework} is not in the capability table")
    token = GGML if family == "ggml" else precision
    listed = [e for e in table.entry if framework in e.frameworks and e.device == device.kind]
    for e in listed:
        if token in e.precisions and _device_matches(e, device):
            doubt = None
            if (e.min_cc or e.below_cc) and _cc(device.compute_capability) is None:
                doubt = (
                    f"{precision} with {framework} needs {_condition(e)}; "
                    "compute capability unknown"
                )
            return Support(True, e.how, table.sources[e.source], doubt)
    if not listed:
        return Support(False, f"{framework} has no {device.kind} backend in the capability table")
    near = next((e for e in listed if token in e.precisions), None)
    if near is not None:
        return Support(
            False,
            f"{precision} with {framework} needs {_condition(near)}",
            table.sources[near.source],
        )
    return Support(False, f"{framework} does not run {precision} on {device.label}")


def _condition(e: Capability) -> str:
    if e.min_cc and e.below_cc:
        return f"compute capability {e.min_cc} to below {e.below_cc}"
    if e.min_cc:
        return f"compute capability {e.min_cc} or newer ({e.how})"
    if e.archs:
        return f"one of {', '.join(e.archs)} ({e.how})"
    if e.cpu_flags:
        return f"a CPU with {' or '.join(e.cpu_flags)} ({e.how})"
    return e.how


def defaults_for(frameworks: set[str]) -> list[RuntimeDefault]:
    return [d for d in runtime_defaults().default if d.framework in frameworks]
