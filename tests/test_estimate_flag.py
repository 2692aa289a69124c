"""`estimate` on a result says whether its weight size is an estimate."""

from __future__ import annotations

from canirun.catalog import load_catalog
from canirun.estimate.capacity import capacity
from canirun.estimate.rate import rate_variant
from canirun.hardware.model import Hardware, Host, Memory

GIB = 2**30


def _results(variant_id: str):
    catalog = load_catalog(user_dir=False)
    host = Host(Hardware(memory=Memory(total_bytes=512 * GIB, available_bytes=512 * GIB)))
    return rate_variant(catalog.variant_by_id[variant_id], catalog, capacity(host, catalog.gpus))


def test_a_published_file_size_is_not_an_estimate() -> None:
    catalog = load_catalog(user_dir=False)
    ref = catalog.variant_by_id["llama-3-8b"]
    published = {f.precision.lower() for f in ref.variant.files if not f.estimate}
    assert published, "llama-3-8b lists published files"
    results = _results("llama-3-8b")
    from_file = [
        r
        for r in results
        if (r.precision or "").lower() in published
        and r.memory is not None
        and any("published" in line for line in r.memory.breakdown)
    ]
    assert from_file
    assert all(r.estimate is False for r in from_file)
    formula = [r for r in results if (r.precision or "").lower() not in published and r.memory]
    assert formula
    assert all(r.estimate is True for r in formula)


def test_every_result_states_it() -> None:
    # Both values occur across the catalog: the flag is not a constant.
    values = {r.estimate for r in _results("llama-3-8b") + _results("mistral-7b")}
    assert values == {True, False}
