"""KV cache size from the architecture: exact for GQA/MQA and sliding-window layers.

    bytes = 2 (K and V) x sum over layers(kv_heads x head_dim x cached tokens)
            x bytes per element x sequences

A sliding-window layer caches at most ``sliding_window`` tokens, but only the
layers the runtimes really cap (``arch.local_layers``): llama.cpp, for one, runs
Mistral 7B v0.1 as a plain llama with a full-context cache. llama.cpp allocates
the whole cache up front, so it is resident from the start.
"""

from __future__ import annotations

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


def kv_cache_bytes(arch: Arch, context: int, *, sequences: int = 1, cache_type: str = "f16") -> int:
    """The KV cache for ``sequences`` sequences of ``context`` tokens each."""
    per_token_layer = 2 * arch.kv_heads * arch.effective_head_dim
    window = arch.sliding_window or context
    local = arch.local_layers
    tokens = (arch.layers - local) * context + local * min(context, window)
    return round(per_token_layer * tokens * KV_BYTES[cache_type] * sequences)
