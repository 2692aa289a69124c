"""Weight bytes of a model variant at a precision, and how they split across layers.

Order of preference: a real published file of that precision (after a sanity
check against the formula: a stored size far off is refused and said so), then
the per-tensor GGUF recipe from the architecture, then parameters x bytes per
parameter. Quantised PyTorch precisions quantise linear layers only; the
embedding table, the output head and vision towers stay 16-bit.
"""

from __future__ import annotations

import msgspec

from canirun.catalog.schema import FileSize, Model, Variant
from canirun.estimate import gguf
from canirun.estimate.memo import ByIdentity
from canirun.estimate.params import (
    decoder_params,
    embedding_params,
    output_params,
    routed_expert_params,
)
from canirun.estimate.precision import Precision, torch_bytes_per_param

# A published file more than this far from the formula is not trusted.
FILE_TOLERANCE = 0.15

TORCH_FORMATS = frozenset({"safetensors", "pytorch", "ckpt", "onnx", "jax", "tensorflow"})


class Weights(msgspec.Struct, frozen=True):
    bytes: int
    how: str
    source: str | None
    estimate: bool
    # Bytes of each repeating (offloadable) layer; None for models that are not layered.
    layers: tuple[int, ...] | None = None
    # Share of the weights read per token (mixture-of-experts read only active experts).
    active_fraction: float = 1.0
    rejected: str | None = None  # a published file that failed the sanity check, and why


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _formula(
    model: Model, variant: Variant, precision: Precision
) -> tuple[int, str, tuple[int, ...] | None] | None:
    arch, params = variant.arch, variant.params
    if params is None:
        return None
    if precision.family == "ggml":
        if arch is not None and arch.gguf_arch:
            size, per_layer = gguf.file_layout(arch, arch.gguf_arch, precision.name)
            extra = _non_decoder_params(variant) * 2  # a vision tower would be a separate F16 file
            how = f"{precision.name} tensor by tensor from the architecture (llama.cpp's recipe)"
            return size + extra, how, per_layer
        tower = _non_decoder_params(variant) if model.kind == "vlm" else 0
        size = round((params.total - tower) * precision.bits / 8) + tower * 2
        how = (
            f"{params.total - tower:,} params x {precision.bits} bits "
            f"(typical {precision.name} file)"
        )
        if tower:
            # Ollama and llama.cpp keep the vision tower and projector in F16.
            how += f" + {tower:,} vision params in F16"
        return size, how, None
    if precision.family == "mlx":
        return _mlx_formula(variant, precision)
    per_param = torch_bytes_per_param(precision.name)
    if arch is not None and precision.name == "mxfp4":
        experts = routed_expert_params(arch)
        kept = params.total - experts  # attention, embeddings, head, router: bf16
        size = round(experts * 4.25 / 8 + kept * 2)
        how = f"{experts:,} expert params x 4.25 bits (MXFP4) + {kept:,} others x 2 B"
        return size, how, _torch_layers(variant, size / params.total)
    if arch is not None and per_param < 2:
        linear = decoder_params(arch) - embedding_params(arch) - output_params(arch)
        kept = params.total - linear  # embeddings, head, vision tower: 16-bit
        size = round(linear * per_param + kept * 2)
        how = (
            f"{linear:,} linear params x {per_param:g} B + {kept:,} others x 2 B ({precision.name})"
        )
    else:
        size = round(params.total * per_param)
        how = f"{params.total:,} params x {per_param:g} bytes ({precision.name})"
    layers = _torch_layers(variant, per_param)
    return size, how, layers


def _mlx_formula(variant: Variant, precision: Precision) -> tuple[int, str, tuple[int, ...] | None]:
    """mlx_lm.convert -q quantises every module that has `to_quantized`: all Linear layers
    *and* the Embedding (and an untied lm_head), so the embedding table and the head are
    quantised too; norms, biases and anything outside the decoder stay 16-bit. (MoE
    routers some models keep at 8 bits are under 0.1 % of the weights: counted at the
    nominal width.)"""
    params, arch = variant.params, variant.arch
    assert params is not None
    bytes_per = precision.bits / 8
    if arch is None:
        size = round(params.total * bytes_per)
        return size, f"{params.total:,} params x {precision.bits:g} bits ({precision.name})", None
    quantised = min(params.total, decoder_params(arch))
    kept = params.total - quantised
    size = round(quantised * bytes_per + kept * 2)
    how = (
        f"{quantised:,} params (linear layers, embeddings, head) x {precision.bits:g} bits "
        f"({precision.name}: per-64 16-bit scale and bias) + {kept:,} others x 2 B"
    )
    return size, how, _torch_layers(variant, bytes_per)


def _non_decoder_params(variant: Variant) -> int:
    if variant.arch is None or variant.params is None:
        return 0
    return max(0, variant.params.total - decoder_params(variant.arch))


def _torch_layers(variant: Variant, per_param: float) -> tuple[int, ...] | None:
    arch = variant.arch
    if arch is None:
        return None
    body = decoder_params(arch) - embedding_params(arch) - output_params(arch)
    per_layer = round(body * per_param / arch.layers)
    return (per_layer,) * arch.layers


def _matching_file(model: Model, variant: Variant, precision: Precision) -> FileSize | None:
    for f in variant.files:
        if f.precision.lower() != precision.name.lower():
            continue
        if precision.family == "ggml" and f.format == "gguf":
            return f
        if precision.family in ("torch", "mlx") and f.format in TORCH_FORMATS:
            return f
    return None


def _scaled(layers: tuple[int, ...] | None, factor: float) -> tuple[int, ...] | None:
    return None if layers is None else tuple(round(b * factor) for b in layers)


def weights(model: Model, variant: Variant, precision: Precision) -> Weights | None:
    """Weight bytes at ``precision``, or None when the catalog lacks what is needed.
    Memoised: the largest-context search asks again for the precision rated."""
    key = (id(model), id(variant), id(precision))
    hit = _WEIGHTS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _WEIGHTS.keep(key, (model, variant, precision), _weights(model, variant, precision))


_WEIGHTS: ByIdentity[Weights | None] = ByIdentity()


def _weights(model: Model, variant: Variant, precision: Precision) -> Weights | None:
    formula = _formula(model, variant, precision)
    if formula is None:
        return None
    size, how, layers = formula
    active = _active_fraction(variant) * _decoder_share(model, variant, precision, size)
    published = _matching_file(model, variant, precision)
    if published is not None:
        real = published.size_bytes
        off = real / size - 1
        if abs(off) <= FILE_TOLERANCE:
            source = published.url or model.sources.get(published.source, published.source)
            return Weights(
                bytes=real,
                how=f"published {published.format} file: {published.size or _gb(real)}",
                source=source,
                estimate=published.estimate,
                layers=_scaled(layers, real / size),
                active_fraction=active,
            )
        rejected = (
            f"published {published.format} size {published.size or _gb(real)} is {off:+.0%} "
            f"off the formula ({_gb(size)}); not used"
        )
        return Weights(size, how, None, True, layers, active, rejected)
    return Weights(size, how, None, True, layers, active)


def _decoder_share(model: Model, variant: Variant, precision: Precision, size: int) -> float:
    """Share of a VLM's weight bytes that decoding reads: the vision tower runs once per
    image, not per token. The tower stays 16-bit except in fp32 (see ``_formula``)."""
    if model.kind != "vlm" or size <= 0:
        return 1.0
    tower = _non_decoder_params(variant) * (4 if precision.name == "fp32" else 2)
    return max(0.0, 1 - tower / size)


def _active_fraction(variant: Variant) -> float:
    p = variant.params
    if p is None or p.active is None:
        return 1.0
    return min(1.0, p.active / p.total)
