"""GGUF file size from the architecture, tensor by tensor, as llama.cpp quantises it.

A "Q4_K_M" file is not 4.5 bits everywhere: llama.cpp's quantiser
(src/llama-quant.cpp, ``llama_tensor_get_type_impl``) gives the output head
Q6_K, half of the attn_v and ffn_down tensors Q6_K, 8-expert MoE attention
Q8_0, and falls back to legacy types where a row length is not a multiple of
the k-quant block (256). This module replays those rules on the tensor shapes
implied by the catalog's architecture numbers, which is why its estimates stay
within a few percent of real files where a flat bits-per-weight is off by 5-20 %.
Only the standard (non-imatrix, non-IQ) recipes are modelled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec

from canirun.catalog.schema import Arch

if TYPE_CHECKING:
    from canirun.catalog.loader import Catalog
from canirun.estimate.params import is_moe_layer
from canirun.estimate.precision import GGML_BLOCK, GGML_BPW

# llama.cpp architectures that store Q, K and V as one fused attn_qkv tensor (phi3: Phi-3/3.5/4,
# whose Q4_K_M files give attn_qkv Q5_K; tests/reference/names-2025.toml).
FUSED_QKV = frozenset({"falcon", "bloom", "mpt", "starcoder", "gptneox", "gpt2", "refact", "phi3"})

_DEFAULT_TYPE = {
    "Q2_K": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_0": "Q4_0",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
    "Q6_K": "Q6_K",
    "Q8_0": "Q8_0",
    "F16": "F16",
    "BF16": "BF16",
    # llama.cpp's MXFP4_MOE file type (gpt-oss): routed experts MXFP4, the rest Q8_0.
    "MXFP4_MOE": "Q8_0",
}
FILE_TYPES = tuple(_DEFAULT_TYPE)

# llama.cpp's fallback when a tensor's row length is not a multiple of the block.
# Q3_K rows fell back to Q4_1 in 2023 builds and to IQ4_NL/Q4_0 later; the larger
# one is used so that the many older files in circulation are not under-estimated
# (Falcon 7B's 2023 Q3_K files match Q4_1 to 0.1 %).
_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_1", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


class Tensor(msgspec.Struct, frozen=True):
    category: str  # token_embd, output, attn_q, attn_k, attn_v, attn_qkv, attn_output, ffn_*
    layer: int | None
    elements: int
    ncols: int  # ne[0]: the row length that must divide by the block size
    expert: str = ""  # "exps" (routed experts), "shexp" (shared experts) or ""


def _attention_tensors(arch: Arch, layer: int, fused: bool) -> Iterator[Tensor]:
    hd = arch.effective_head_dim
    h = arch.hidden
    if arch.is_mla:
        # llama.cpp's deepseek2 tensors since the MLA converter (ggml-org/llama.cpp#12801):
        # attn_q_a/attn_q_b, attn_kv_a_mqa, and kv_b split into attn_k_b (rows of
        # qk_nope_head_dim) and attn_v_b (rows of kv_lora_rank).
        rope, latent = arch.qk_rope_head_dim or 0, arch.kv_lora_rank or 0
        v_dim, nope = arch.v_head_dim or 0, hd - (arch.qk_rope_head_dim or 0)
        if arch.q_lora_rank:
            yield Tensor("attn_q_a", layer, h * arch.q_lora_rank, h)
            yield Tensor("attn_q_b", layer, arch.q_lora_rank * arch.heads * hd, arch.q_lora_rank)
        else:
            yield Tensor("attn_q", layer, h * arch.heads * hd, h)
        yield Tensor("attn_kv_a_mqa", layer, h * (latent + rope), h)
        yield Tensor("attn_k_b", layer, arch.heads * nope * latent, nope)
        yield Tensor("attn_v_b", layer, arch.heads * latent * v_dim, latent)
        yield Tensor("attn_output", layer, arch.heads * v_dim * h, arch.heads * v_dim)
        return
    q, kv = arch.heads * hd, arch.kv_heads * hd
    if fused:
        yield Tensor("attn_qkv", layer, h * (q + 2 * kv), h)
    else:
        yield Tensor("attn_q", layer, h * q, h)
        yield Tensor("attn_k", layer, h * kv, h)
        yield Tensor("attn_v", layer, h * kv, h)
    yield Tensor("attn_output", layer, q * h, q)


def _ffn(arch: Arch, layer: int, width: int, count: int, expert: str) -> Iterator[Tensor]:
    h = arch.hidden
    if arch.ffn == "gated":
        yield Tensor("ffn_gate", layer, count * h * width, h, expert)
    yield Tensor("ffn_up", layer, count * h * width, h, expert)
    yield Tensor("ffn_down", layer, count * width * h, width, expert)


def _layer_tensors(arch: Arch, layer: int, fused: bool) -> Iterator[Tensor]:
    yield from _attention_tensors(arch, layer, fused)
    if not arch.experts:
        yield from _ffn(arch, layer, arch.intermediate, 1, "")
    elif not is_moe_layer(arch, layer):
        yield from _ffn(arch, layer, arch.dense_intermediate or arch.intermediate, 1, "")
    else:
        # The router (ffn_gate_inp) is kept in F32 by llama-quantize.
        yield Tensor("ffn_gate_inp", layer, arch.hidden * arch.experts, arch.hidden)
        yield from _ffn(arch, layer, arch.intermediate, arch.experts, "exps")
        if arch.shared_experts:
            width = arch.shared_intermediate or arch.intermediate
            yield from _ffn(arch, layer, width, arch.shared_experts, "shexp")


def gguf_tensors(arch: Arch, gguf_arch: str) -> list[Tensor]:
    """The 2-D weight tensors of a GGUF file for this architecture, in file order."""
    fused = gguf_arch in FUSED_QKV
    tensors = [Tensor("token_embd", None, arch.vocab * arch.hidden, arch.hidden)]
    for layer in range(arch.layers):
        tensors.extend(_layer_tensors(arch, layer, fused))
    if has_output_tensor(arch, gguf_arch):
        tensors.append(Tensor("output", None, arch.vocab * arch.hidden, arch.hidden))
    return tensors


def has_output_tensor(arch: Arch, gguf_arch: str) -> bool:
    """Whether the file stores output.weight apart from token_embd.

    Tied models normally share one tensor, but llama.cpp's converter writes a
    copy for BLOOM, and Falcon checkpoints carry their own lm_head.
    """
    if arch.gguf_output is not None:
        return arch.gguf_output
    return not arch.tied_embeddings or gguf_arch in {"bloom", "falcon"}


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _predicates(i: int, n: int) -> tuple[bool, ...]:
    """Every test the recipe makes on a layer index (or the attn_v counter) ``i`` of ``n``."""
    return (i < 2, i < 4, i < n // 16, i < n // 8, _use_more_bits(i, n))


class _Recipe:
    """The per-tensor choices of llama_tensor_get_type_impl for one file type."""

    def __init__(self, ftype: str, arch: Arch, gguf_arch: str) -> None:
        self.ftype = ftype
        self.arch = arch
        self.falcon = gguf_arch == "falcon"
        self.tied = not has_output_tensor(arch, gguf_arch)
        self.n_gqa = arch.heads // arch.kv_heads
        self.eight_experts = arch.experts == 8
        # LLM_TYPE_70B: a llama-architecture model of 80 layers with GQA.
        self.is_70b = gguf_arch == "llama" and arch.layers == 80 and arch.kv_heads < arch.heads
        self.n_attn_v = arch.layers
        self.i_attn_v = 0

    def choose(self, t: Tensor) -> str:
        if t.category == "ffn_gate_inp":
            return "F32"
        if self.arch.experts_mxfp4 and t.expert == "exps":
            return self._mxfp4_expert(t)
        base = _DEFAULT_TYPE[self.ftype]
        if base in ("F16", "BF16") or self.ftype == "MXFP4_MOE":
            return base
        chosen = self._select(t, base)
        return _fallback(chosen, t.ncols)

    def _mxfp4_expert(self, t: Tensor) -> str:
        """gpt-oss publishes its experts in MXFP4 and GGUF files keep them so in every
        file type ("All quants keep the feed forward networks at mxfp4", bartowski's
        gpt-oss-20b GGUF: MXFP4 12.1 GB, Q6_K 12.04 GB); only the rest is requantised."""
        return "MXFP4"

    def _select(self, t: Tensor, new: str) -> str:
        f, cat = self.ftype, t.category
        if cat == "output" or (self.tied and cat == "token_embd"):
            if self.falcon or t.ncols % GGML_BLOCK[new] != 0:
                return "Q8_0"
            return new if new == "Q8_0" else "Q6_K"
        if cat == "token_embd":
            return new
        if cat in ("attn_v", "attn_qkv"):
            return self._attn_v(new)
        if cat == "attn_k":
            return "Q8_0" if self.eight_experts else new
        if cat == "ffn_down" and t.expert == "shexp":
            return self._ffn_down(t.layer or 0, new)
        if cat == "ffn_down":
            return self._ffn_down(t.layer or 0, new)
        if cat == "attn_output":
            if self.falcon:
                return "Q4_K" if f == "Q3_K_L" else new
            if self.eight_experts:
                return "Q5_K" if f in ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M") else new
            return {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(f, new)
        return new

    def _attn_v(self, new: str) -> str:
        # A fused attn_qkv tensor takes this branch too (category_is_attn_v), so the
        # separate ATTENTION_QKV branch further down in llama.cpp is never reached.
        f = self.ftype
        i, n = self.i_attn_v, self.n_attn_v
        if f == "Q2_K":
            new = "Q4_K" if self.n_gqa >= 4 else "Q3_K"
        elif f == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif f == "Q3_K_L":
            new = "Q5_K"
        elif f in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
            new = "Q6_K"
        elif f == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if self.is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"
        if self.eight_experts:
            new = "Q8_0"
        self.i_attn_v += 1
        return new

    def _ffn_down(self, i: int, new: str) -> str:
        f, n = self.ftype, self.arch.layers
        if f == "Q2_K":
            return "Q3_K"
        if f == "Q3_K_M":
            if i < n // 16:
                return "Q5_K"
            return "Q4_K" if not self.falcon or _use_more_bits(i, n) else "Q3_K"
        if f == "Q3_K_L":
            return "Q4_K" if self.falcon else "Q5_K"
        if f == "Q4_K_M":
            if self.falcon:
                if i < n // 16:
                    return "Q6_K"
                return "Q5_K" if _use_more_bits(i, n) else "Q4_K"
            return "Q6_K" if _use_more_bits(i, n) else new
        if f == "Q5_K_M" and _use_more_bits(i, n):
            return "Q6_K"
        if f == "Q4_K_S" and not self.falcon and i < n // 8:
            return "Q5_K"
        return new


def _fallback(kind: str, ncols: int) -> str:
    if ncols % GGML_BLOCK[kind] == 0:
        return kind
    fallback = _FALLBACK.get(kind, "F16")
    return fallback if ncols % GGML_BLOCK[fallback] == 0 else "F16"


def tensor_types(arch: Arch, gguf_arch: str, ftype: str) -> list[tuple[Tensor, str]]:
    recipe = _Recipe(ftype, arch, gguf_arch)
    return [(t, recipe.choose(t)) for t in gguf_tensors(arch, gguf_arch)]


def gguf_weight_bytes(arch: Arch, gguf_arch: str, ftype: str) -> int:
    """Bytes of tensor data in a GGUF file of this type (norms kept in F32)."""
    return _known_layout(arch, gguf_arch, ftype)[0]


def file_layout(arch: Arch, gguf_arch: str, ftype: str) -> tuple[int, tuple[int, ...]]:
    """``gguf_weight_bytes`` and the bytes of each repeating layer, in one lookup."""
    return _known_layout(arch, gguf_arch, ftype)


Layout = tuple[int, tuple[int, ...]]


def encode_layout(layout: Layout) -> list[Any]:
    """[total, [[bytes, layers], ...]]: the per-layer bytes run-length encoded (most
    layers of a file are the same size), as compiled.json keeps them."""
    total, per_layer = layout
    runs: list[list[int]] = []
    for size in per_layer:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return [total, runs]


def decode_layout(encoded: list[Any]) -> Layout:
    total, runs = encoded
    per_layer: list[int] = []
    for size, layers in runs:  # list repetition: C speed per layer (a scan decodes ~750)
        per_layer += [int(size)] * int(layers)
    return int(total), tuple(per_layer)


def seed_layouts(catalog: Catalog) -> None:
    """Take the shipped variants' layouts that scripts/compile_catalog.py worked out (a
    test keeps them equal to _layout's), so a scan does not replay the recipe for them."""
    if (_SEEDED_FROM and _SEEDED_FROM[0] is catalog) or not (
        catalog.gguf_layouts or catalog.decode_cycles
    ):
        return
    _SEEDED.clear()
    _DECODED.clear()
    _SEEDED_CYCLES.clear()
    for ref in catalog.variants():
        arch = ref.variant.arch
        layouts = catalog.gguf_layouts.get(ref.id)
        if arch is not None and arch.gguf_arch is not None and layouts:
            _SEEDED[id(arch)] = (arch, layouts)
        cycles = catalog.decode_cycles.get(ref.id)
        if arch is not None and arch.gguf_arch is not None and cycles:
            _SEEDED_CYCLES[id(arch)] = (arch, cycles)
    _SEEDED_FROM[:] = [catalog]


def seeded_cycles(arch: Arch, gguf_arch: str, ftype: str) -> tuple[bool, float | None]:
    """(True, x86 decode cycles) when compiled.json has them for this shipped arch and file
    type (None: a block type has no figure); (False, None) when they must be worked out."""
    seeded = _SEEDED_CYCLES.get(id(arch))
    if seeded is None or seeded[0] is not arch or gguf_arch != arch.gguf_arch:
        return False, None
    if ftype not in seeded[1]:
        return False, None
    cycles = seeded[1][ftype]
    return True, None if cycles is None else float(cycles)


# id(arch) -> (arch, {file type: encoded layout}); each entry keeps its arch alive, so
# the id stays its own. Decoded layouts are kept once asked for.
_SEEDED: dict[int, tuple[Arch, Mapping[str, Any]]] = {}
_DECODED: dict[tuple[int, str, str], Layout] = {}
_SEEDED_FROM: list[Catalog] = []  # the catalog seeded from
# id(arch) -> (arch, {file type: x86 decode cycles or None}), as _SEEDED.
_SEEDED_CYCLES: dict[int, tuple[Arch, Mapping[str, Any]]] = {}


def _known_layout(arch: Arch, gguf_arch: str, ftype: str) -> Layout:
    key = (id(arch), gguf_arch, ftype)
    known = _DECODED.get(key)
    if known is not None:
        return known
    seeded = _SEEDED.get(id(arch))
    if seeded is not None and seeded[0] is arch and gguf_arch == arch.gguf_arch:
        encoded = seeded[1].get(ftype)
        if encoded is not None:
            known = _DECODED[key] = decode_layout(encoded)
            return known
    return _layout(arch, gguf_arch, ftype)


# Categories whose type depends on the layer index (llama.cpp's use_more_bits and
# i_attention_wv counters); every other tensor gets the same type in every layer.
_LAYER_DEPENDENT = frozenset({"attn_v", "attn_qkv", "ffn_down"})


TypedLayer = tuple[tuple[Tensor, str], ...]


@lru_cache(maxsize=1024)
def typed_tensors(arch: Arch, gguf_arch: str, ftype: str) -> tuple[list[TypedLayer], TypedLayer]:
    """Each repeating layer's tensors with the type llama.cpp's recipe gives them, and the
    edge tensors (token_embd, then output when the file has one).

    A layer's types depend on its index only through the recipe's tests on it (and on the
    attn_v counter), so layers that agree on them share one tuple, the same object: a
    94-layer MoE has thousands of tensors, and callers cost each distinct layer once.
    """
    recipe = _Recipe(ftype, arch, gguf_arch)
    fused = gguf_arch in FUSED_QKV
    templates: dict[bool, list[tuple[Tensor, str | None]]] = {}
    alike: dict[tuple[bool, tuple[bool, ...], tuple[bool, ...]], tuple[TypedLayer, int]] = {}
    layers: list[TypedLayer] = []
    for layer in range(arch.layers):
        moe = is_moe_layer(arch, layer)
        if moe not in templates:
            templates[moe] = [
                (t, None if t.category in _LAYER_DEPENDENT else recipe.choose(t))
                for t in _layer_tensors(arch, layer, fused)
            ]
        key = (moe, _predicates(layer, arch.layers), _predicates(recipe.i_attn_v, arch.layers))
        known = alike.get(key)
        if known is not None:
            typed, attn_v_seen = known
            recipe.i_attn_v += attn_v_seen
        else:
            counter = recipe.i_attn_v
            typed = tuple(
                (t, fixed or recipe.choose(msgspec.structs.replace(t, layer=layer)))
                for t, fixed in templates[moe]
            )
            alike[key] = (typed, recipe.i_attn_v - counter)
        layers.append(typed)
    # The recipe sees token_embd first and output last, as in the file; neither depends
    # on the layer counters, so their order relative to the layers does not matter.
    edges = [Tensor("token_embd", None, arch.vocab * arch.hidden, arch.hidden)]
    if has_output_tensor(arch, gguf_arch):
        edges.append(Tensor("output", None, arch.vocab * arch.hidden, arch.hidden))
    return layers, tuple((t, recipe.choose(t)) for t in edges)


@lru_cache(maxsize=1024)
def _layout(arch: Arch, gguf_arch: str, ftype: str) -> Layout:
    """Total tensor bytes and bytes per repeating layer (cached: a scan asks for the same
    file for each framework and again in the largest-context search)."""
    layers, edges = typed_tensors(arch, gguf_arch, ftype)
    sized: dict[int, tuple[float, int]] = {}  # id of a shared layer tuple -> its bytes
    total = 0.0
    per_layer = []
    for typed in layers:
        known = sized.get(id(typed))
        if known is None:
            sizes = [t.elements * GGML_BPW[kind] / 8 for t, kind in typed]
            known = sized[id(typed)] = (sum(sizes), sum(map(round, sizes)))
        total += known[0]
        per_layer.append(known[1])
    total += sum(t.elements * GGML_BPW[kind] / 8 for t, kind in edges)
    norms = (2 * arch.layers + 1) * arch.hidden * 4
    positions = (arch.learned_positions or 0) * arch.hidden * 4  # llama.cpp keeps them F32
    return round(total) + norms + positions, tuple(per_layer)
