"""Parameter counts recomputed from decoder architecture numbers.

Used to cross-check catalog figures (a test keeps arch and published counts
within a few percent of each other) and to size individual tensors for the
GGUF quantisation recipes. Norm weights and biases are left out: they are
well under 0.1 % of any catalogued model.
"""

from __future__ import annotations

from dataclasses import dataclass

from canirun.catalog.schema import Arch


@dataclass(frozen=True, slots=True)
class LayerShapes:
    """Parameters per tensor class, for one layer (FFN counts all experts)."""

    attn_q: int
    attn_k: int
    attn_v: int
    attn_out: int
    ffn_up: int  # includes the gate matrix of gated FFNs
    ffn_down: int
    router: int


def layer_shapes(arch: Arch) -> LayerShapes:
    hd = arch.effective_head_dim
    q_width, kv_width = arch.heads * hd, arch.kv_heads * hd
    experts = arch.experts or 1
    up_mats = 2 if arch.ffn == "gated" else 1
    return LayerShapes(
        attn_q=arch.hidden * q_width,
        attn_k=arch.hidden * kv_width,
        attn_v=arch.hidden * kv_width,
        attn_out=q_width * arch.hidden,
        ffn_up=experts * up_mats * arch.hidden * arch.intermediate,
        ffn_down=experts * arch.intermediate * arch.hidden,
        router=arch.hidden * arch.experts if arch.experts else 0,
    )


def embedding_params(arch: Arch) -> int:
    return arch.vocab * arch.hidden + (arch.learned_positions or 0) * arch.hidden


def output_params(arch: Arch) -> int:
    return 0 if arch.tied_embeddings else arch.vocab * arch.hidden


def decoder_params(arch: Arch) -> int:
    """Total parameters implied by the architecture (all experts)."""
    s = layer_shapes(arch)
    per_layer = s.attn_q + s.attn_k + s.attn_v + s.attn_out + s.ffn_up + s.ffn_down + s.router
    return arch.layers * per_layer + embedding_params(arch) + output_params(arch)


def active_decoder_params(arch: Arch) -> int:
    """Parameters read per token: only `experts_per_token` experts of each MoE layer."""
    if not arch.experts or not arch.experts_per_token:
        return decoder_params(arch)
    s = layer_shapes(arch)
    share = arch.experts_per_token / arch.experts
    ffn = round((s.ffn_up + s.ffn_down) * share)
    per_layer = s.attn_q + s.attn_k + s.attn_v + s.attn_out + ffn + s.router
    return arch.layers * per_layer + embedding_params(arch) + output_params(arch)
