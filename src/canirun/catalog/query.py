"""Filters over the catalog for `canirun list`."""

from __future__ import annotations

from canirun.catalog.loader import Catalog
from canirun.catalog.schema import Model
from canirun.errors import InputError

CATEGORIES = (
    "foundation",
    "industry",
    "code",
    "vision",
    "speech",
    "multimodal",
    "science",
    "embeddings",
)


def filter_models(
    catalog: Catalog,
    *,
    category: str | None = None,
    task: str | None = None,
    local: bool = False,
    api: bool = False,
) -> tuple[Model, ...]:
    if local and api:
        raise InputError("--local and --api exclude each other")
    if category is not None and category.lower() not in CATEGORIES:
        raise InputError(f"--category: {category!r} is not one of {', '.join(CATEGORIES)}")
    tasks = sorted({m.task for m in catalog.models})
    if task is not None and task.lower() not in tasks:
        raise InputError(f"--task: {task!r} is not one of {', '.join(tasks)}")
    out = []
    for m in catalog.models:
        if category is not None and m.category != category.lower():
            continue
        if task is not None and m.task != task.lower():
            continue
        hostable = m.access in ("open-weights", "on-request")
        if (local and not hostable) or (api and m.access != "api-only"):
            continue
        out.append(m)
    return tuple(out)
