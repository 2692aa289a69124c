"""The catalog: curated, sourced facts about models, frameworks and GPUs.

Data lives in TOML files under ``data/``; ``schema`` validates them and
``loader`` reads them once per process.
"""

from canirun.catalog.loader import Catalog, VariantRef, load_catalog

__all__ = ["Catalog", "VariantRef", "load_catalog"]
