"""The estimator: formulas, verdicts, and the properties that keep it honest."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canirun.catalog import load_catalog
from canirun.estimate import gguf
from canirun.estimate.capacity import capacity, match_gpu_spec
from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.precision import PRECISIONS
from canirun.estimate.rate import Options, best_result, max_context, rate_variant, summarize
from canirun.estimate.results import RUNNABLE, Workload, rank
from canirun.estimate.weights import weights
from canirun.hardware.model import Cpu, Docker, Gpu, Hardware, Host, Memory, OsInfo

CATALOG = load_catalog(user_dir=False)
GIB = 2**30
MIB = 2**20


def host(
    *,
    ram: int | None = 64 * GIB,
    gpus: tuple[Gpu, ...] = (),
    docker: bool | None = False,
) -> Host:
    return Host(
        Hardware(
            cpu=Cpu(logical_cores=16, arch="x86_64"),
            memory=Memory(total_bytes=ram, available_bytes=ram),
            gpus=gpus,
            os=OsInfo(system="Linux", machine="x86_64", docker=Docker(cli=docker, daemon=docker)),
        )
    )


def gpu(
    memory: int | None = 24 * GIB, index: int = 0, name: str = "NVIDIA GeForce RTX 4090"
) -> Gpu:
    return Gpu(
        vendor="nvidia",
        name=name,
        memory_total_bytes=memory,
        memory_free_bytes=memory,
        index=index,
        compute_capability="8.9",
        memory_bandwidth_bytes_per_s=1_008_000_000_000,
    )


def rate(variant_id: str, h: Host, **opts: object) -> list:  # type: ignore[type-arg]
    cap = capacity(h, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    return rate_variant(CATALOG.variant_by_id[variant_id], CATALOG, cap, Options(**opts))  # type: ignore[arg-type]


def verdict_of(variant_id: str, h: Host, precision: str) -> str:
    (result,) = rate(variant_id, h, precisions=(precision,))
    return result.verdict


# -- formulas ------------------------------------------------------------------------


def test_kv_cache_llama_2_7b_is_full_multi_head() -> None:
    arch = CATALOG.variant_by_id["llama-2-7b"].variant.arch
    assert arch is not None
    # llama.cpp prints "KV self size = 2048.00 MiB" at n_ctx 4096 (tests/reference).
    assert kv_cache_bytes(arch, 4096) == 2048 * MIB


def test_kv_cache_gqa_is_four_times_smaller() -> None:
    arch = CATALOG.variant_by_id["llama-3-8b"].variant.arch
    assert arch is not None
    assert kv_cache_bytes(arch, 4096) == 512 * MIB
    assert kv_cache_bytes(arch, 4096, cache_type="q8_0") == round(512 * MIB * 34 / 64)
    assert kv_cache_bytes(arch, 4096, sequences=4) == 4 * 512 * MIB


def test_sliding_window_layers_are_capped() -> None:
    arch = CATALOG.variant_by_id["gemma-2-9b"].variant.arch
    assert arch is not None
    assert arch.local_layers
    assert arch.sliding_window
    full_layers = arch.layers - arch.local_layers
    at_32k = kv_cache_bytes(arch, 32768)
    per_layer_token = 2 * arch.kv_heads * arch.effective_head_dim * 2
    expected = per_layer_token * (full_layers * 32768 + arch.local_layers * arch.sliding_window)
    assert at_32k == expected


def test_mistral_v01_window_is_not_applied() -> None:
    arch = CATALOG.variant_by_id["mistral-7b"].variant.arch
    assert arch is not None
    assert kv_cache_bytes(arch, 32768) == 8 * kv_cache_bytes(arch, 4096)


def test_q4_k_m_is_not_a_flat_four_bits() -> None:
    arch = CATALOG.variant_by_id["llama-3-8b"].variant.arch
    assert arch is not None
    size = gguf.gguf_weight_bytes(arch, "llama", "Q4_K_M")
    bpw = size * 8 / 8_030_261_248
    assert 4.8 < bpw < 5.0  # field notes: real Q4_K_M files average 4.85-4.9 bpw


def test_non_256_rows_fall_back_from_k_quants() -> None:
    falcon = CATALOG.variant_by_id["falcon-7b"].variant.arch
    assert falcon is not None
    kinds = {t.category: k for t, k in gguf.tensor_types(falcon, "falcon", "Q4_K_M")}
    assert kinds["attn_output"] == "Q5_0"  # 4544 is not a multiple of 256
    assert kinds["output"] == "Q8_0"  # Falcon's output is always Q8_0


def test_moe_counts_all_experts_for_memory_and_active_for_speed() -> None:
    ref = CATALOG.variant_by_id["mixtral-8x7b"]
    w = weights(ref.model, ref.variant, PRECISIONS["Q4_K_M"])
    assert w is not None
    assert w.bytes > 24e9  # all 46.7B parameters
    assert 0.25 < w.active_fraction < 0.3  # 12.9B active of 46.7B


def test_a_published_file_far_off_the_formula_is_refused() -> None:
    ref = CATALOG.variant_by_id["llama-3-8b"]
    bad = dataclasses.replace(
        ref.variant, files=[dataclasses.replace(f, size="1 GB") for f in ref.variant.files]
    )
    w = weights(ref.model, bad, PRECISIONS["Q4_K_M"])
    assert w is not None
    assert w.rejected is not None
    assert w.bytes > 4e9


def test_gpu_names_match_the_table() -> None:
    spec = match_gpu_spec("NVIDIA GeForce RTX 4090", CATALOG.gpus)
    assert spec is not None
    assert spec.memory_bytes == 24 * GIB
    h100 = match_gpu_spec("NVIDIA H100 80GB HBM3", CATALOG.gpus)
    assert h100 is not None
    assert "H100" in h100.name


# -- verdicts ------------------------------------------------------------------------


def test_gpu_verdict_with_reasons_and_numbers() -> None:
    (r,) = rate("llama-3-8b", host(gpus=(gpu(),)), precisions=("Q4_K_M",))
    assert r.verdict == "gpu"
    assert r.memory is not None
    assert r.memory.total_bytes == r.memory.gpu_bytes
    assert "needs" in r.reasons[0]
    assert "GPU 0" in r.reasons[0]
    assert r.tokens_per_second is not None
    assert r.tokens_per_second.low is not None
    assert r.tokens_per_second.low < r.tokens_per_second.high  # type: ignore[operator]


def test_multi_gpu_verdict() -> None:
    two = (gpu(24 * GIB, 0), gpu(24 * GIB, 1))
    assert verdict_of("llama-3-70b", host(ram=8 * GIB, gpus=two), "Q3_K_M") == "multi-gpu"


def test_offload_verdict_counts_layers() -> None:
    (r,) = rate("llama-3-70b", host(ram=64 * GIB, gpus=(gpu(),)), precisions=("Q4_K_M",))
    assert r.verdict == "offload"
    assert r.gpu_layers is not None
    assert 0 < r.gpu_layers < r.total_layers


def test_cpu_verdict() -> None:
    assert verdict_of("llama-3-8b", host(ram=32 * GIB), "Q4_K_M") == "cpu"


def test_too_big() -> None:
    assert verdict_of("llama-3.1-405b", host(ram=32 * GIB, gpus=(gpu(),)), "Q4_K_M") == "too-big"


def test_unsupported_without_the_needed_gpu() -> None:
    (r,) = rate("alphafold-2-monomer", host())
    assert r.verdict == "unsupported"
    assert "NVIDIA" in r.reasons[0]


def test_api_only_says_where() -> None:
    (r,) = rate("gpt-4o-2024-08-06", host())
    assert r.verdict == "api-only"
    assert "Azure" in r.reasons[0]


def test_unknown_when_a_needed_figure_is_missing() -> None:
    assert verdict_of("llama-3-8b", host(ram=None), "Q4_K_M") == "unknown"
    no_free = replace(gpu(), memory_free_bytes=None)
    assert verdict_of("llama-3-8b", host(ram=None, gpus=(no_free,)), "Q4_K_M") == "unknown"


def test_unknown_gpu_memory_never_counts_as_a_fit() -> None:
    no_free = replace(gpu(), memory_free_bytes=None)
    (r,) = rate("llama-3-8b", host(ram=32 * GIB, gpus=(no_free,)), precisions=("Q4_K_M",))
    assert r.verdict == "cpu"
    assert any("free memory unknown" in reason for reason in r.reasons)


def test_context_is_capped_at_the_model_maximum_and_said() -> None:
    results = rate("falcon-7b", host(), precisions=("Q4_K_M",), workload=Workload(8192))
    assert results[0].context_tokens == 2048
    assert any("maximum" in reason for reason in results[0].reasons)


def test_best_precision_and_largest_context() -> None:
    h = host(ram=16 * GIB)
    cap = capacity(h, CATALOG.gpus)
    ref = CATALOG.variant_by_id["llama-3-8b"]
    results = rate_variant(ref, CATALOG, cap, Options())
    best = best_result(results)
    assert best.verdict == "cpu"
    assert best.precision == "Q8_0"  # F16 (16 GB) does not fit in 16 GiB with headroom
    summary = summarize(ref, results, CATALOG, cap, Options())
    assert summary.max_context_tokens is not None
    assert 4096 <= summary.max_context_tokens <= 8192


# -- properties ----------------------------------------------------------------------

LLMS = [r.id for r in CATALOG.variants() if r.variant.arch and r.variant.arch.gguf_arch]
GGUF_ORDER = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"]


@settings(max_examples=60, deadline=None)
@given(
    variant=st.sampled_from(LLMS),
    ram=st.integers(2, 512),
    extra=st.integers(1, 256),
    vram=st.sampled_from([None, 8, 16, 24, 48, 80]),
)
def test_more_memory_never_makes_a_verdict_worse(
    variant: str, ram: int, extra: int, vram: int | None
) -> None:
    gpus = (gpu(vram * GIB),) if vram else ()
    small = verdict_of(variant, host(ram=ram * GIB, gpus=gpus), "Q4_K_M")
    big = verdict_of(variant, host(ram=(ram + extra) * GIB, gpus=gpus), "Q4_K_M")
    assert rank(big) <= rank(small)
    if vram:
        bigger_gpu = (gpu((vram + extra) * GIB),)
        assert rank(verdict_of(variant, host(ram=ram * GIB, gpus=bigger_gpu), "Q4_K_M")) <= rank(
            small
        )


@settings(max_examples=60, deadline=None)
@given(variant=st.sampled_from(LLMS), ctx=st.integers(1, 65536), more=st.integers(1, 65536))
def test_a_longer_context_never_needs_less_memory(variant: str, ctx: int, more: int) -> None:
    def total(c: int) -> int:
        (r,) = rate(variant, host(), precisions=("Q4_K_M",), workload=Workload(c))
        assert r.memory is not None
        assert r.memory.total_bytes is not None
        return r.memory.total_bytes

    assert total(ctx + more) >= total(ctx)


@settings(max_examples=40, deadline=None)
@given(variant=st.sampled_from(LLMS))
def test_a_higher_precision_never_needs_less_memory(variant: str) -> None:
    ref = CATALOG.variant_by_id[variant]
    sizes = [weights(ref.model, ref.variant, PRECISIONS[p]) for p in GGUF_ORDER]
    assert all(s is not None for s in sizes)
    values = [s.bytes for s in sizes if s is not None]
    assert values == sorted(values)
    torch = [
        weights(ref.model, ref.variant, PRECISIONS[p]) for p in ("int4", "int8", "fp16", "fp32")
    ]
    torch_values = [s.bytes for s in torch if s is not None]
    assert torch_values == sorted(torch_values)


def test_every_verdict_is_reachable() -> None:
    seen = set()
    for variant_id, h in [
        ("llama-3-8b", host(gpus=(gpu(),))),
        ("llama-3-70b", host(ram=8 * GIB, gpus=(gpu(24 * GIB, 0), gpu(24 * GIB, 1)))),
        ("llama-3-70b", host(gpus=(gpu(),))),
        ("llama-3-8b", host()),
        ("llama-3.1-405b", host(ram=8 * GIB)),
        ("alphafold-2-monomer", host()),
        ("claude-3-haiku", host()),  # api-only (Opus is retired: unsupported)
        ("llama-3-8b", host(ram=None)),
    ]:
        seen |= {r.verdict for r in rate(variant_id, h, precisions=("Q4_K_M",))} | {
            r.verdict for r in rate(variant_id, h) if r.precision is None
        }
    # multi-node needs a cluster: tests/test_multinode.py reaches it.
    assert seen >= (RUNNABLE - {"multi-node"}) | {"too-big", "unsupported", "api-only", "unknown"}


def test_max_context_is_none_when_nothing_runs() -> None:
    h = host(ram=4 * GIB)
    cap = capacity(h, CATALOG.gpus)
    ref = CATALOG.variant_by_id["llama-3-70b"]
    results = rate_variant(ref, CATALOG, cap, Options())
    assert max_context(ref, CATALOG, cap, Options(), best_result(results)) is None


@pytest.mark.parametrize("kind", ["diffusion", "speech", "vision", "embedding", "vlm"])
def test_every_kind_gets_a_runnable_verdict_on_a_big_machine(kind: str) -> None:
    h = host(ram=512 * GIB, gpus=(gpu(80 * GIB),))
    refs = [
        r for r in CATALOG.variants() if r.model.kind == kind and r.model.access == "open-weights"
    ]
    assert refs
    for ref in refs:
        if ref.variant.params and ref.variant.params.total > 30e9:
            continue
        verdicts = {r.verdict for r in rate(ref.id, h)}
        assert verdicts & RUNNABLE, (ref.id, verdicts)


_GGUF_FTYPES = sorted(n for n, p in PRECISIONS.items() if p.family == "ggml")


@settings(max_examples=60, deadline=None)
@given(
    layers=st.integers(1, 130),
    fused=st.booleans(),
    experts=st.sampled_from([None, 8, 64]),
    ftype=st.sampled_from(_GGUF_FTYPES),
)
def test_layer_bytes_equal_a_replay_of_every_tensor(
    layers: int, fused: bool, experts: int | None, ftype: str
) -> None:
    """_layout sizes layers that agree on the recipe's index tests once (issue 15's
    speed work); the sizes must equal replaying llama.cpp's recipe tensor by tensor."""
    from canirun.catalog.schema import Arch

    arch = Arch(
        layers=layers,
        hidden=1024,
        heads=16,
        kv_heads=4 if experts != 8 else 16,
        head_dim=64,
        intermediate=2816,
        vocab=32000,
        max_context=8192,
        experts=experts,
        experts_per_token=2 if experts else None,
        dense_layers=1 if experts == 64 else 0,
        gguf_arch="falcon" if fused and experts is None else "llama",
        source="test",
    )
    gguf_arch = arch.gguf_arch or "llama"
    per_layer = [0.0] * layers
    total = 0.0
    for tensor, kind in gguf.tensor_types(arch, gguf_arch, ftype):
        size = tensor.elements * gguf.GGML_BPW[kind] / 8
        total += size
        if tensor.layer is not None:
            per_layer[tensor.layer] += round(size)
    assert list(gguf.file_layout(arch, gguf_arch, ftype)[1]) == per_layer
    norms = (2 * layers + 1) * arch.hidden * 4
    assert abs(gguf.gguf_weight_bytes(arch, gguf_arch, ftype) - (round(total) + norms)) <= 1


def test_reasons_name_the_gpu_a_framework_or_model_needs_as_a_sentence_does() -> None:
    """Reasons once read "needs a apple GPU" and "needs a NVIDIA GPU; none here"."""
    from canirun.estimate.frameworks import framework_status
    from canirun.estimate.placement import a_gpu_of

    assert a_gpu_of(["nvidia", "amd", "cpu"]) == "an NVIDIA/AMD GPU"
    assert a_gpu_of(["apple"]) == "an Apple GPU"
    assert a_gpu_of(["intel"]) == "an Intel GPU"
    assert a_gpu_of(["cpu"]) == "a supported GPU"
    cap = capacity(host(ram=64 * GIB), CATALOG.gpus)
    gpu_only = [f for f in CATALOG.frameworks if f.local and "cpu" not in f.accelerators]
    assert gpu_only, "the catalog has GPU-only frameworks (vLLM's CUDA builds, TGI...)"
    for fw in gpu_only:
        status = framework_status(fw, cap)
        assert f"needs {a_gpu_of(fw.accelerators)}" in status.reasons
    needing = [r for r in CATALOG.variants() if r.model.needs and r.model.needs.gpu_vendor]
    assert needing, "AlphaFold 3 needs an NVIDIA GPU"
    reasons = rate_variant(needing[0], CATALOG, cap)[0].reasons
    assert "needs an NVIDIA GPU; none here" in reasons
