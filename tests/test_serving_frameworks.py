"""`canirun frameworks` finds what each framework could serve without building results
(issue 15): the same framework lists as the full rating, for every catalog variant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from canirun.estimate.capacity import capacity
from canirun.estimate.rate import Options, rate_variant, serving_frameworks
from canirun.estimate.results import RUNNABLE, Workload
from tests.test_estimate import CATALOG, GIB, gpu, host

_GTX_1080 = replace(gpu(8 * GIB, name="NVIDIA GeForce GTX 1080"), compute_capability="6.1")
_RX_7900 = replace(
    gpu(24 * GIB, name="AMD Radeon RX 7900 XTX"), vendor="amd", compute_capability=None
)
# The old and AMD cards put runtimes at different placements for one precision (vLLM on
# the CPU where llama.cpp or Transformers use the GPU): only the best placement's count.
HOSTS = {
    "8 GB laptop, no GPU": host(ram=8 * GIB),
    "RTX 4090 + 64 GB": host(gpus=(gpu(),)),
    "RTX 3060 12 GB + 16 GB": host(ram=16 * GIB, gpus=(gpu(12 * GIB, name="RTX 3060"),)),
    "2x 80 GB": host(ram=256 * GIB, gpus=(gpu(80 * GIB), gpu(80 * GIB, index=1))),
    "GTX 1080 + 32 GB": host(ram=32 * GIB, gpus=(_GTX_1080,)),
    "RX 7900 XTX + 32 GB": host(ram=32 * GIB, gpus=(_RX_7900,)),
    # Free memory unknown: nothing is a fit there, and the weights bound counts it as none.
    "RTX 4090, free unknown + 16 GB": host(
        ram=16 * GIB, gpus=(replace(gpu(), memory_free_bytes=None),)
    ),
    # Little memory anywhere: most precisions skipped by the weights bound alone.
    "4 GB laptop, no GPU": host(ram=4 * GIB),
}
WORKLOADS = {
    "default": Options(),
    "32k context, q8_0 KV": Options(workload=Workload(context_tokens=32768, kv_cache_type="q8_0")),
    "llama.cpp only": Options(framework="llama.cpp"),
}


def _listed(results: list) -> frozenset[str]:  # type: ignore[type-arg]
    return frozenset(f for r in results if r.verdict in RUNNABLE for f in r.frameworks)


@pytest.mark.parametrize("opts", WORKLOADS.values(), ids=WORKLOADS.keys())
@pytest.mark.parametrize("machine", HOSTS.values(), ids=HOSTS.keys())
def test_same_frameworks_as_the_full_rating(machine, opts) -> None:  # type: ignore[no-untyped-def]
    cap = capacity(machine, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    listed = 0
    for ref in CATALOG.variants():
        full = _listed(rate_variant(ref, CATALOG, cap, opts))
        assert serving_frameworks(ref, CATALOG, cap, opts) == full, ref.id
        listed += bool(full)
    assert listed > 0  # the comparison covered variants that run


def test_nothing_is_served_where_the_ram_is_unknown() -> None:
    # A missing figure is never a fit: the full rating says unknown, and so does this.
    cap = capacity(host(ram=None), CATALOG.gpus, ram_bandwidth=80 * 10**9)
    for ref in CATALOG.variants():
        assert _listed(rate_variant(ref, CATALOG, cap, Options())) == frozenset()
        assert serving_frameworks(ref, CATALOG, cap) == frozenset(), ref.id


def test_llama_on_a_linux_gpu() -> None:
    cap = capacity(HOSTS["RTX 4090 + 64 GB"], CATALOG.gpus, ram_bandwidth=80 * 10**9)
    served = serving_frameworks(CATALOG.variant_by_id["llama-3.1-8b"], CATALOG, cap)
    assert {"llama.cpp", "vllm"} <= served
    assert "mlx-lm" not in served  # macOS only


@pytest.mark.parametrize("opts", WORKLOADS.values(), ids=WORKLOADS.keys())
@pytest.mark.parametrize("machine", HOSTS.values(), ids=HOSTS.keys())
def test_a_framework_that_cannot_run_a_precision_here_never_places_it(machine, opts) -> None:  # type: ignore[no-untyped-def]
    """The premise of rate._able, by which serving_frameworks skips such frameworks: their
    placement is never a runnable verdict."""
    from canirun.estimate.rate import _able, _able_table, _candidates, _evaluate, precisions_for

    cap = capacity(machine, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    skipped = 0
    for ref in CATALOG.variants():
        fws = _candidates(ref, CATALOG, cap, opts)[0]
        table = _able_table(cap, fws, ref.model.kind)
        for p in precisions_for(ref, fws, opts.precisions):
            able = {f.id for f in _able(table, cap, fws, p, ref.model.kind)}
            for e in _evaluate(ref, fws, p, cap, opts):
                if e.framework.id not in able:
                    skipped += 1
                    assert e.placement.verdict not in RUNNABLE, (ref.id, p.name, e.framework.id)
    if opts is WORKLOADS["default"] and not machine.hardware.gpus:
        assert skipped > 0  # GPU-only runtimes (vLLM, TGI) there: the check covered some
