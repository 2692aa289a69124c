"""Parameter counts recomputed from decoder architecture numbers.

Used to cross-check catalog figures (a test keeps arch and published counts
within a few percent of each other) and to size individual tensors for the
GGUF quantisation recipes. Norm weights and biases are left out: they are
well under 0.1 % of any catalogued model.

Mixture-of-experts layers hold `experts` routed experts of width
`intermediate`, `shared_experts` always-on experts of width
`shared_intermediate` and a router; a MoE model's `dense_layers` hold one
dense FFN of width `dense_intermediate` instead (DeepSeek-V3's first three
layers, every other layer of Llama 4 Maverick). MLA attention (DeepSeek)
replaces the K/V projections by a down-projection to the latent
(`kv_lora_rank` + `qk_rope_head_dim`) and an up-projection back to the heads.
"""

from __future__ import annotations

import msgspec

from canirun.catalog.schema import Arch
from canirun.estimate.memo import ByIdentity


class LayerShapes(msgspec.Struct, frozen=True):
    """Parameters per tensor class, for one layer (FFN counts all experts)."""

    attn_q: int
    attn_k: int  # MLA: the down-projection to the latent (kv_a_proj_with_mqa)
    attn_v: int  # MLA: the up-projection of the latent to keys and values (kv_b_proj)
    attn_out: int
    ffn_up: int  # includes the gate matrix of gated FFNs
    ffn_down: int
    router: int
    shared_up: int = 0  # shared experts (gate + up)
    shared_down: int = 0

    @property
    def attention(self) -> int:
        return self.attn_q + self.attn_k + self.attn_v + self.attn_out

    @property
    def total(self) -> int:
        return (
            self.attention
            + self.ffn_up
            + self.ffn_down
            + self.router
            + self.shared_up
            + self.shared_down
        )


def _up_mats(arch: Arch) -> int:
    return 2 if arch.ffn == "gated" else 1


def _attention(arch: Arch) -> tuple[int, int, int, int]:
    h, hd, heads = arch.hidden, arch.effective_head_dim, arch.heads
    if arch.is_mla:
        rope, v_dim = arch.qk_rope_head_dim or 0, arch.v_head_dim or 0
        latent = arch.kv_lora_rank or 0
        q_width = heads * hd
        q = h * arch.q_lora_rank + arch.q_lora_rank * q_width if arch.q_lora_rank else h * q_width
        kv_down = h * (latent + rope)
        kv_up = latent * heads * (hd - rope + v_dim)
        return q, kv_down, kv_up, heads * v_dim * h
    q_width, kv_width = heads * hd, arch.kv_heads * hd
    return h * q_width, h * kv_width, h * kv_width, q_width * h


def is_moe_layer(arch: Arch, layer: int) -> bool:
    """Dense layers come first (DeepSeek's first_k_dense_replace)."""
    return bool(arch.experts) and layer >= arch.dense_layers


def layer_shapes(arch: Arch, layer: int | None = None) -> LayerShapes:
    """Shapes of ``layer`` (default: a MoE layer of a MoE model, else any layer)."""
    q, k, v, out = _attention(arch)
    h, up = arch.hidden, _up_mats(arch)
    moe = is_moe_layer(arch, arch.dense_layers if layer is None else layer)
    if arch.experts and not moe:
        width = arch.dense_intermediate or arch.intermediate
        return LayerShapes(q, k, v, out, up * h * width, width * h, 0)
    experts = arch.experts or 1
    shared_width = arch.shared_intermediate or arch.intermediate
    return LayerShapes(
        attn_q=q,
        attn_k=k,
        attn_v=v,
        attn_out=out,
        ffn_up=experts * up * h * arch.intermediate,
        ffn_down=experts * arch.intermediate * h,
        router=h * arch.experts if arch.experts else 0,
        shared_up=arch.shared_experts * up * h * shared_width,
        shared_down=arch.shared_experts * shared_width * h,
    )


def embedding_params(arch: Arch) -> int:
    return arch.vocab * arch.hidden + (arch.learned_positions or 0) * arch.hidden


def output_params(arch: Arch) -> int:
    return 0 if arch.tied_embeddings else arch.vocab * arch.hidden


def _layers_total(arch: Arch) -> int:
    if not arch.dense_layers:
        return arch.layers * layer_shapes(arch).total
    dense = layer_shapes(arch, 0).total
    return arch.dense_layers * dense + arch.moe_layers * layer_shapes(arch).total


def decoder_params(arch: Arch) -> int:
    """Total parameters implied by the architecture (all experts). Memoised: every
    precision's weights and every result's speed ask it of the same architecture."""
    key = (id(arch), "decoder")
    hit = _COUNTS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _COUNTS.keep(key, (arch,), _decoder_params(arch))


def _decoder_params(arch: Arch) -> int:
    return _layers_total(arch) + embedding_params(arch) + output_params(arch)


_COUNTS: ByIdentity[int] = ByIdentity()


def routed_expert_params(arch: Arch) -> int:
    """Parameters of all routed experts (what MXFP4 stores in 4 bits in gpt-oss)."""
    if not arch.experts:
        return 0
    s = layer_shapes(arch)
    return arch.moe_layers * (s.ffn_up + s.ffn_down)


def active_decoder_params(arch: Arch) -> int:
    """Parameters used per token: only `experts_per_token` routed experts of each MoE layer."""
    key = (id(arch), "active")
    hit = _COUNTS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _COUNTS.keep(key, (arch,), _active_decoder_params(arch))


def _active_decoder_params(arch: Arch) -> int:
    if not arch.experts or not arch.experts_per_token:
        return decoder_params(arch)
    unused = round(routed_expert_params(arch) * (1 - arch.experts_per_token / arch.experts))
    return decoder_params(arch) - unused
