"""The value constraints of the catalog's schema, and where pydantic validates it.

The catalog's records (``schema``, ``rules``) are plain frozen dataclasses, so that a
command reading the shipped, already validated catalog never imports pydantic (issue 15:
about 120 ms of every scan and check). Their annotations name the aliases below
(``Layers``, ``SizeText`` ...) and pydantic's ``Field``; the modules never evaluate
them. ``validated`` installs these names into the modules and lets a pydantic
``TypeAdapter`` validate the data: unknown keys refused (``extra="forbid"``), every
range and pattern checked, the records' ``__post_init__`` checks run as validators.
Type checkers import the aliases from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_origin

from pydantic import AfterValidator, Field

from canirun.units import parse_rate, parse_size

if TYPE_CHECKING:
    from pydantic import TypeAdapter

T = TypeVar("T")


def _size(text: str) -> str:
    parse_size(text)  # raises ValueError with a readable message
    return text


def _rate(text: str) -> str:
    parse_rate(text)
    return text


def _iso_date(text: str) -> str:
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError(f"{text!r} is not a date such as '2025-09-24'")
    return text


def _cc(text: str) -> str:
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    if not re.fullmatch(r"[0-9]{1,3}\.[0-9]{1,3}", text, re.ASCII):
        raise ValueError(f"{text!r} is not a compute capability such as '8.9'")
    return text


SizeText = Annotated[str, AfterValidator(_size)]
RateText = Annotated[str, AfterValidator(_rate)]
ComputeCapability = Annotated[str, AfterValidator(_cc)]
FullDate = Annotated[str, AfterValidator(_iso_date)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._+-]*$")]
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\d$")]
# Sane ranges: far above any published model (the largest today: 126 layers,
# hidden 16384, a 256k vocabulary, 10M tokens of context, 405B parameters),
# low enough that every estimate stays fast and exact. `layers = 1000000` is
# a typo, and refused as one.
Layers = Annotated[int, Field(gt=0, le=1024)]
Width = Annotated[int, Field(gt=0, le=2**20)]  # hidden, feed-forward width
Heads = Annotated[int, Field(gt=0, le=4096)]
Vocab = Annotated[int, Field(gt=0, le=2**22)]
Tokens = Annotated[int, Field(gt=0, le=2**27)]  # context, windows, sequence lengths
Experts = Annotated[int, Field(gt=0, le=4096)]
ParamCount = Annotated[int, Field(gt=0, le=10**14)]
Pixels = Annotated[int, Field(gt=0, le=2**16)]
# An Ollama model reference as `ollama pull` takes it: an optional namespace, the
# library name, and an explicit tag (`qwen2.5:7b`, `llama3.2:latest`). Tags keep
# Ollama's own spelling, upper-case quant letters included (`8b-instruct-q4_K_M`).
OllamaTag = Annotated[
    str,
    Field(pattern=r"^(?:[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*:[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}(?:-\d{2})?$")]


@cache
def install() -> None:
    """Give the schema modules the names their annotations use, for pydantic to resolve."""
    from canirun.catalog import rules, schema

    names: dict[str, Any] = {k: v for k, v in globals().items() if get_origin(v) is Annotated}
    names["Field"] = Field
    for module in (schema, rules):
        for name, value in names.items():
            module.__dict__.setdefault(name, value)


_ADAPTERS: dict[type, Any] = {}


def adapter(cls: type[T]) -> TypeAdapter[T]:
    """The validator of ``cls``, built once (building one costs milliseconds)."""
    found: TypeAdapter[T] | None = _ADAPTERS.get(cls)
    if found is None:
        from pydantic import TypeAdapter

        install()
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def validated(cls: type[T], data: object) -> T:
    """``data`` (TOML or JSON values) as a ``cls`` record, validated; pydantic's
    ``ValidationError`` when it is not one."""
    return adapter(cls).validate_python(data)


# pydantic words a misspelt key of a dataclass as a bad keyword argument; catalog
# authors think in keys, and the wording matched the BaseModel one before.
_WORDING = {"unexpected_keyword_argument": "not a known key (misspelt?)"}


def problem(error: Mapping[str, Any]) -> str:
    """One pydantic error's message, in the catalog's words."""
    return _WORDING.get(str(error.get("type")), str(error.get("msg")))
