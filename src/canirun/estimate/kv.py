"""KV cache size from the architecture, the way each runtime allocates it.

    bytes = sum over layers(K + V elements per token x cached tokens)
            x bytes per element x sequences

What a token costs per layer depends on the attention:

* GQA/MQA: 2 x kv_heads x head_dim.
* MLA (DeepSeek-V2/V3): runtimes that implement MLA cache the compressed latent,
  ``kv_lora_rank + qk_rope_head_dim`` values (576 for DeepSeek-V3) per token per
  layer. vLLM stores exactly that (vllm/model_executor/models/deepseek_v2.py builds
  its MLA attention with one KV head of head_size kv_lora_rank + qk_rope_head_dim);
  llama.cpp stores it as the K cache with no V cache since
  ggml-org/llama.cpp#19067 (January 2026; builds from #12801, April 2025, to then
  also kept a 512-wide V cache). Transformers' DeepSeek-V3 code caches the
  decompressed keys and values: heads x (head_dim + v_head_dim), 72x more.

How many tokens a layer caches depends on the runtime too: a sliding-window or
chunked layer (``arch.local_layers``) needs only ``sliding_window`` tokens, and
vLLM (hybrid KV cache manager) and Transformers (sliding-window cache layers)
keep just that. llama.cpp's iSWA cache keeps ``n_swa + n_ubatch`` cells padded
to 256 (src/llama-kv-cache-iswa.cpp), in F16 even with a quantized cache type
(#21277), and the whole context with ``--swa-full``. Llama 4's chunked layers
(``window_kind = "chunked"``) are sized the same way in all three.
llama.cpp allocates the whole cache up front, so it is resident from the start.
"""

from __future__ import annotations

from typing import Literal

from canirun.catalog.schema import Arch

# Bytes per cached element: ggml's q8_0 block is 34 bytes per 32 values, q4_0 is 18.
KV_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
}

KvRuntime = Literal["llama.cpp", "vllm", "transformers"]

# llama.cpp's default physical batch; its SWA cache holds n_swa + n_ubatch cells.
LLAMA_CPP_UBATCH = 512
SWA_PAD = 256

LLAMA_CPP_SWA_SOURCE = (
    "https://github.com/ggml-org/llama.cpp/blob/master/src/llama-kv-cache-iswa.cpp"
)
LLAMA_CPP_MLA_SOURCE = "https://github.com/ggml-org/llama.cpp/pull/19067"


def elements_per_token_layer(arch: Arch, runtime: KvRuntime = "vllm") -> int:
    """Cached K + V values per token per layer in this runtime."""
    if arch.is_mla:
        if runtime == "transformers":
            return arch.heads * (arch.effective_head_dim + (arch.v_head_dim or 0))
        return (arch.kv_lora_rank or 0) + (arch.qk_rope_head_dim or 0)
    return 2 * arch.kv_heads * arch.effective_head_dim


def local_tokens(arch: Arch, context: int, runtime: KvRuntime, swa_full: bool = False) -> int:
    """Tokens one sliding-window/chunked layer caches for one sequence."""
    window = arch.sliding_window or context
    if runtime == "llama.cpp":
        if swa_full:
            return context
        cells = -(-(window + LLAMA_CPP_UBATCH) // SWA_PAD) * SWA_PAD
        return min(context, cells)
    return min(context, window)


def kv_cache_bytes(
    arch: Arch,
    context: int,
    *,
    sequences: int = 1,
    cache_type: str = "f16",
    runtime: KvRuntime = "vllm",
    swa_full: bool = False,
) -> int:
    """The KV cache for ``sequences`` sequences of ``context`` tokens each.

    The default runtime, vLLM, caches exactly what the architecture needs
    (a window layer holds the window, MLA the latent).
    """
    per_token_layer = elements_per_token_layer(arch, runtime)
    local = arch.local_layers
    window = local_tokens(arch, context, runtime, swa_full) if local else 0
    full = (arch.layers - local) * context * KV_BYTES[cache_type]
    # llama.cpp keeps the sliding-window part in F16 whatever --cache-type-k/v say
    # (ggml-org/llama.cpp#21277, April 2026: "do not quantize SWA KV cache").
    local_type = "f16" if runtime == "llama.cpp" and not swa_full else cache_type
    if local_type == "f16" and KV_BYTES[cache_type] > KV_BYTES["f16"]:
        local_type = cache_type  # an fp32 cache stays fp32
    windowed = local * window * KV_BYTES[local_type]
    return round(per_token_layer * (full + windowed) * sequences)


def runtime_of(framework_id: str, ggml: bool) -> KvRuntime:
    """Which KV layout a framework uses: llama.cpp's for GGUF runtimes, vLLM's, else
    Transformers' (TGI and the rest are sized like Transformers: the larger one)."""
    if ggml:
        return "llama.cpp"
    return "vllm" if framework_id == "vllm" else "transformers"
