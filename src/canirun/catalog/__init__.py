"""The catalog: curated, sourced facts about models, frameworks and GPUs.

Data lives in TOML files under ``data/``; ``schema`` validates them and
``loader`` reads them once per process. The names below load on first use, so
that importing ``canirun.catalog.compiled`` (for `canirun hardware`) does not
import pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canirun.catalog.loader import Catalog, VariantRef, load_catalog

__all__ = ["Catalog", "VariantRef", "load_catalog"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'canirun.catalog' has no attribute {name!r}")
    from canirun.catalog import loader

    return getattr(loader, name)
