"""Issue 11's architectures, each against the published config.json figures and, where a
runtime's own code or log gives it, the runtime's figure.

Published config figures used below (catalog sources, read 2026-12-01):
DeepSeek-V3: 61 layers, kv_lora_rank 512, qk_rope_head_dim 64, 128 heads, qk_nope 128, v 128,
  671B total / 37B activated (card). Qwen3-30B-A3B: 30.5B / 3.3B; Qwen3-235B-A22B: 235B / 22B;
  Qwen3-Coder-480B-A35B: 480B / 35B; Llama 4 Scout 109B / 17B and Maverick 400B / 17B (cards,
  vision encoder included); gpt-oss-20b 21B / 3.6B and gpt-oss-120b 117B / 5.1B (card: active
  excludes the embedding); Phi-3.5-MoE 42B / 6.6B.
"""

from __future__ import annotations

import dataclasses

import pytest

from canirun.catalog import load_catalog
from canirun.catalog.constraints import adapter
from canirun.catalog.schema import Arch, Variant
from canirun.estimate import gguf
from canirun.estimate.capacity import Capacity, GpuSlot
from canirun.estimate.kv import elements_per_token_layer, kv_cache_bytes, local_tokens
from canirun.estimate.params import (
    active_decoder_params,
    decoder_params,
    embedding_params,
    routed_expert_params,
)
from canirun.estimate.precision import PRECISIONS
from canirun.estimate.rate import effective_workload, runtime_context
from canirun.estimate.results import Workload
from canirun.estimate.weights import weights

CATALOG = load_catalog(user_dir=False)
MIB, GIB = 2**20, 2**30


def arch(variant_id: str) -> Arch:
    a = CATALOG.variant_by_id[variant_id].variant.arch
    assert a is not None
    return a


# -- MLA -------------------------------------------------------------------------------


@pytest.mark.parametrize("vid", ["deepseek-v3-671b", "deepseek-r1-671b"])
def test_mla_caches_the_latent_in_vllm_and_llama_cpp(vid: str) -> None:
    a = arch(vid)
    # kv_lora_rank + qk_rope_head_dim = 512 + 64 per token per layer, one shared "head".
    assert elements_per_token_layer(a, "vllm") == 576
    assert elements_per_token_layer(a, "llama.cpp") == 576
    # 576 values x 2 bytes x 61 layers = 70,272 bytes per token at f16.
    assert kv_cache_bytes(a, 1, runtime="vllm") == 70_272
    assert kv_cache_bytes(a, 32768, runtime="llama.cpp") == 2196 * MIB
    # Transformers materialises keys (128 heads x 192) and values (128 x 128).
    assert elements_per_token_layer(a, "transformers") == 128 * (192 + 128)


def test_mla_runtime_choice_follows_the_framework() -> None:
    ref = CATALOG.variant_by_id["deepseek-v3-671b"]
    from canirun.estimate.need import build_need

    wl = Workload(context_tokens=8192)
    sizes = {}
    for fid, precision in (("vllm", "fp8"), ("llama.cpp", "Q4_K_M"), ("transformers", "bf16")):
        fw = CATALOG.framework_by_id[fid]
        p = PRECISIONS[precision]
        w = weights(ref.model, ref.variant, p)
        assert w is not None
        need, _ = build_need(ref, fw, p, w, wl)
        sizes[fid] = need.kv
    assert sizes["vllm"] == sizes["llama.cpp"] == 70_272 * 8192
    assert sizes["transformers"] == 70_272 * 8192 * (128 * 320) // 576


# -- MoE: total for memory, active for speed -------------------------------------------

MOE = [
    # variant, published total, published active (cards), tolerance on the total
    ("deepseek-v3-671b", 671e9, 37e9, 0.01),
    ("qwen3-moe-30b-a3b", 30.5e9, 3.3e9, 0.01),
    ("qwen3-moe-235b-a22b", 235e9, 22e9, 0.01),
    ("qwen3-coder-480b-a35b", 480e9, 35e9, 0.01),
    ("llama-4-scout", 109e9, 17e9, 0.02),  # the card's total includes the vision encoder
    ("llama-4-maverick", 400e9, 17e9, 0.01),
    ("phi-3.5-moe-42b-a6.6b", 42e9, 6.6e9, 0.01),
    ("gpt-oss-120b", 117e9, 5.1e9, 0.01),
    ("gpt-oss-20b", 21e9, 3.6e9, 0.01),
]


@pytest.mark.parametrize(("vid", "total", "active", "tol"), MOE)
def test_moe_shapes_reproduce_the_published_totals(
    vid: str, total: float, active: float, tol: float
) -> None:
    a = arch(vid)
    assert decoder_params(a) == pytest.approx(total, rel=tol)
    implied_active = active_decoder_params(a)
    if vid.startswith("gpt-oss"):
        implied_active -= embedding_params(a)  # OpenAI counts the unembedding, not the embedding
    assert implied_active == pytest.approx(active, rel=0.03)
    ref = CATALOG.variant_by_id[vid]
    assert ref.variant.params is not None
    assert ref.variant.active_params == ref.variant.params.active


def test_shared_experts_and_leading_dense_layers_are_counted() -> None:
    a = arch("deepseek-v3-671b")
    assert (a.dense_layers, a.moe_layers, a.shared_experts) == (3, 58, 1)
    dense_ffn = 3 * 7168 * 18432
    routed = 256 * 3 * 7168 * 2048
    assert routed_expert_params(a) == 58 * routed
    without_dense = dataclasses.replace(a, dense_layers=0)
    # Three dense FFNs (18,432 wide) replace three layers of 256 experts.
    assert decoder_params(without_dense) - decoder_params(a) == 3 * (
        routed + 3 * 7168 * 2048 + 7168 * 256 - dense_ffn
    )


def test_moe_speed_reads_only_the_active_share() -> None:
    ref = CATALOG.variant_by_id["qwen3-moe-30b-a3b"]
    w = weights(ref.model, ref.variant, PRECISIONS["Q4_K_M"])
    assert w is not None
    assert w.active_fraction == pytest.approx(3.3 / 30.53, rel=0.01)


def test_active_params_are_in_results_and_listing() -> None:
    from canirun.estimate.capacity import capacity
    from canirun.estimate.rate import Options, rate_variant
    from canirun.hardware.model import Cpu, Hardware, Host, Memory, OsInfo

    h = Host(
        Hardware(
            cpu=Cpu(logical_cores=8, arch="x86_64"),
            memory=Memory(total_bytes=64 * GIB, available_bytes=64 * GIB),
            os=OsInfo(system="Linux", machine="x86_64"),
        )
    )
    cap = capacity(h, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    ref = CATALOG.variant_by_id["qwen3-moe-30b-a3b"]
    (r,) = rate_variant(ref, CATALOG, cap, Options(precisions=("Q4_K_M",)))
    assert (r.params, r.active_params) == (ref.variant.params.total, 3_300_000_000)  # type: ignore[union-attr]
    dumped = adapter(Variant).dump_python(ref.variant, mode="json")
    assert dumped["active_params"] == 3_300_000_000


# -- hybrid attention -------------------------------------------------------------------


def test_gemma3_local_layers_per_runtime() -> None:
    a = arch("gemma-3-27b")
    assert (a.layers, a.local_layers, a.sliding_window) == (62, 52, 1024)
    per_token_layer = 2 * 16 * 128 * 2  # K + V, 16 KV heads of 128, f16
    full = 10 * per_token_layer * 32768
    # llama.cpp: GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) = 1536 cells per local layer.
    assert local_tokens(a, 32768, "llama.cpp") == 1536
    assert kv_cache_bytes(a, 32768, runtime="llama.cpp") == full + 52 * per_token_layer * 1536
    assert kv_cache_bytes(a, 32768, runtime="llama.cpp") == 3184 * MIB
    # --swa-full: every layer caches the whole context.
    assert kv_cache_bytes(a, 32768, runtime="llama.cpp", swa_full=True) == 62 * 8192 * 32768
    # vLLM and Transformers keep exactly the window.
    assert kv_cache_bytes(a, 32768, runtime="vllm") == full + 52 * per_token_layer * 1024
    # Below the window every layer holds the whole (short) context.
    assert kv_cache_bytes(a, 512, runtime="llama.cpp") == 62 * per_token_layer * 512


def test_llama_cpp_keeps_the_sliding_window_part_in_f16() -> None:
    a = arch("gemma-3-27b")
    per_token_layer = 2 * 16 * 128
    q8 = kv_cache_bytes(a, 32768, runtime="llama.cpp", cache_type="q8_0")
    assert q8 == round(per_token_layer * (10 * 32768 * 34 / 32 + 52 * 1536 * 2))


def test_gpt_oss_alternates_128_token_windows() -> None:
    a = arch("gpt-oss-20b")
    assert (a.layers, a.local_layers, a.sliding_window, a.attention_sinks) == (24, 12, 128, True)
    per_token_layer = 2 * 8 * 64 * 2
    assert local_tokens(a, 131072, "llama.cpp") == 768  # 128 + 512 padded to 256
    assert kv_cache_bytes(a, 131072, runtime="llama.cpp") == per_token_layer * (
        12 * 131072 + 12 * 768
    )
    assert kv_cache_bytes(a, 131072, runtime="vllm") == per_token_layer * (12 * 131072 + 12 * 128)


def test_llama4_chunked_attention_with_nope_layers() -> None:
    a = arch("llama-4-scout")
    assert (a.window_kind, a.sliding_window, a.local_layers) == ("chunked", 8192, 36)
    per_token_layer = 2 * 8 * 128 * 2
    # 12 NoPE layers attend globally; 36 chunked layers need one 8,192-token chunk.
    assert kv_cache_bytes(a, 131072, runtime="vllm") == per_token_layer * (12 * 131072 + 36 * 8192)
    assert local_tokens(a, 131072, "llama.cpp") == 8704  # 8,192 + 512, a multiple of 256


# -- explicit head_dim -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("vid", "head_dim", "naive"),
    [("qwen3-32b", 128, 80), ("qwen3-0.6b", 128, 64), ("gemma-3-27b", 128, 168)],
)
def test_explicit_head_dim_sizes_the_kv_cache(vid: str, head_dim: int, naive: int) -> None:
    a = arch(vid)
    assert a.effective_head_dim == head_dim
    assert a.hidden // a.heads == naive
    assert elements_per_token_layer(a) == 2 * a.kv_heads * head_dim


def test_qwen3_32b_kv_per_token() -> None:
    # 64 layers x 2 x 8 KV heads x 128 x 2 bytes = 256 KiB per token.
    assert kv_cache_bytes(arch("qwen3-32b"), 1) == 262_144


# -- MXFP4 -----------------------------------------------------------------------------


def test_mxfp4_experts_stay_4_25_bits_and_the_rest_16() -> None:
    ref = CATALOG.variant_by_id["gpt-oss-20b"]
    a = arch("gpt-oss-20b")
    experts = routed_expert_params(a)
    assert experts == 24 * 32 * 3 * 2880 * 2880
    w = weights(ref.model, ref.variant, PRECISIONS["mxfp4"])
    assert w is not None
    assert w.bytes == round(experts * 4.25 / 8 + (ref.variant.params.total - experts) * 2)  # type: ignore[union-attr]
    assert w.bytes == pytest.approx(13.75e9, rel=0.01)
    bf16 = weights(ref.model, ref.variant, PRECISIONS["bf16"])
    assert bf16 is not None
    assert bf16.bytes == pytest.approx(41.8e9, rel=0.01)


def test_gguf_keeps_mxfp4_experts_in_every_file_type() -> None:
    a = arch("gpt-oss-20b")
    types = {t.category + t.expert: k for t, k in gguf.tensor_types(a, "gpt-oss", "Q4_K_M")}
    assert types["ffn_upexps"] == types["ffn_downexps"] == "MXFP4"
    assert types["ffn_gate_inp"] == "F32"
    sizes = {ft: gguf.gguf_weight_bytes(a, "gpt-oss", ft) for ft in ("MXFP4_MOE", "Q6_K", "F16")}
    # bartowski/openai_gpt-oss-20b-GGUF: MXFP4 12.1 GB, Q6_K 12.04 GB (tests/reference).
    assert sizes["MXFP4_MOE"] == pytest.approx(12.1e9, rel=0.01)
    assert sizes["Q6_K"] == pytest.approx(12.04e9, rel=0.01)
    assert sizes["F16"] == pytest.approx(13.75e9, rel=0.01)


def test_mxfp4_precisions_only_for_mxfp4_models() -> None:
    from canirun.estimate.rate import precisions_for

    fws = CATALOG.frameworks
    oss = {p.name for p in precisions_for(CATALOG.variant_by_id["gpt-oss-20b"], fws, None)}
    qwen = {p.name for p in precisions_for(CATALOG.variant_by_id["qwen3-8b"], fws, None)}
    assert {"MXFP4_MOE", "mxfp4"} <= oss
    assert not {"MXFP4_MOE", "mxfp4"} & qwen


# -- contexts: native, extended on request, runtime defaults ----------------------------


def test_native_context_is_the_default_cap_and_yarn_needs_the_flag() -> None:
    ref = CATALOG.variant_by_id["qwen3-8b"]
    a = arch("qwen3-8b")
    assert (a.max_context, a.extended_context) == (40960, 131072)
    wl, notes = effective_workload(ref, Workload(context_tokens=100_000))
    assert wl.context_tokens == 40960
    assert any("--extended-context" in n for n in notes)
    wl, notes = effective_workload(ref, Workload(context_tokens=100_000, extended_context=True))
    assert wl.context_tokens == 100_000
    assert any("YaRN" in n for n in notes)
    wl, _ = effective_workload(ref, Workload(context_tokens=500_000, extended_context=True))
    assert wl.context_tokens == 131072
    # Never multiplied by a rope factor behind the user's back.
    assert effective_workload(ref, Workload())[0].context_tokens == 4096


def _cap(vram_gib: int | None) -> Capacity:
    gpus = ()
    if vram_gib:
        gpus = (GpuSlot(0, "GPU", "nvidia", vram_gib * GIB, vram_gib * GIB, "8.9", None, None),)
    return Capacity(gpus, 64 * GIB, 64 * GIB, None, None, None, "linux", "x86_64", False)


@pytest.mark.parametrize(("vram", "tokens"), [(None, 4096), (16, 4096), (24, 32768), (80, 40960)])
def test_ollama_default_context_follows_vram(vram: int | None, tokens: int) -> None:
    fw = CATALOG.framework_by_id["ollama"]
    got, line = runtime_context(fw, arch("qwen3-8b"), _cap(vram), Workload())
    assert got == tokens  # 256K above 48 GiB, capped at the model's 40,960
    assert (line is None) == (tokens <= 4096)


def test_vllm_and_llama_cpp_default_to_the_model_maximum() -> None:
    for fid in ("vllm", "llama.cpp"):
        fw = CATALOG.framework_by_id[fid]
        got, line = runtime_context(fw, arch("gpt-oss-20b"), _cap(80), Workload())
        assert got == 131072
        assert line is not None
        assert "131,072" in line
    tgi = CATALOG.framework_by_id["tgi"]
    assert runtime_context(tgi, arch("gpt-oss-20b"), _cap(80), Workload()) == (None, None)


@pytest.mark.parametrize(
    "vid", ["deepseek-v3-671b", "llama-4-maverick", "gpt-oss-20b", "gemma-3-27b", "llama-3-8b"]
)
def test_cached_gguf_layout_equals_the_tensor_by_tensor_recipe(vid: str) -> None:
    from canirun.estimate.precision import GGML_BPW

    a = arch(vid)
    assert a.gguf_arch is not None
    for ftype in ("Q4_K_M", "Q3_K_M", "Q8_0"):
        pairs = gguf.tensor_types(a, a.gguf_arch, ftype)
        data = round(sum(t.elements * GGML_BPW[k] / 8 for t, k in pairs))
        norms = (2 * a.layers + 1) * a.hidden * 4
        assert gguf.gguf_weight_bytes(a, a.gguf_arch, ftype) == data + norms
        per_layer = [0] * a.layers
        for t, k in pairs:
            if t.layer is not None:
                per_layer[t.layer] += round(t.elements * GGML_BPW[k] / 8)
        assert list(gguf.file_layout(a, a.gguf_arch, ftype)[1]) == per_layer
