"""What one variant needs at one precision on one framework: weights, KV cache, overheads.

Formulas come first; published figures for the same setting (a model card's
VRAM table, AlphaFold's memory by sequence length) are floors on top of them.
"""

from __future__ import annotations

import dataclasses

from msgspec.structs import replace

from canirun.catalog.loader import VariantRef
from canirun.catalog.schema import Backend, Framework, Model, Requirement, Variant
from canirun.estimate import mlx
from canirun.estimate import precision as prec
from canirun.estimate.kv import KV_BYTES, kv_cache_bytes, runtime_of
from canirun.estimate.memo import ByIdentity
from canirun.estimate.placement import GPU_HEADROOM_MIN, GPU_HEADROOM_SHARE, Need
from canirun.estimate.results import Workload
from canirun.estimate.runtime import (
    REPACKED_PREFIXES,
    Overheads,
    Term,
    _on,
    cross_attention_kv,
    llm_overheads,
    offload_peak,
    other_overheads,
    uses_ggml,
    vision_activations,
)
from canirun.estimate.weights import Weights
from canirun.units import format_bytes

DECODERS = frozenset({"llm", "vlm"})


def kv_type_for(fw: Framework, p: prec.Precision, wl: Workload) -> str | None:
    """The KV cache type this framework uses for the workload, None when it has none of
    the requested type. The default ("f16") is the runtime's own 16-bit cache (fp32
    with fp32 weights on the PyTorch side); any other type must be one it offers."""
    if wl.kv_cache_type == "f16":
        return "fp32" if p.name == "fp32" and p.family != "ggml" else "f16"
    return wl.kv_cache_type if wl.kv_cache_type in fw.kv_cache_types else None


def _kv(ref: VariantRef, fw: Framework, p: prec.Precision, wl: Workload) -> tuple[int, str]:
    arch = ref.variant.arch
    if arch is None or ref.model.kind not in DECODERS:
        return 0, "none"
    kv_type = kv_type_for(fw, p, wl)
    if kv_type is None:  # callers leave such frameworks out (rate._rate)
        raise ValueError(f"{fw.id} has no {wl.kv_cache_type} KV cache")
    # The same for every precision of a family: worked out once per variant and framework.
    ggml = uses_ggml(fw, p.family)
    v = ref.variant
    key = (id(v), id(fw), id(wl), kv_type, ggml)
    hit = _KV.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _KV.keep(key, (v, fw, wl), _kv_of(ref, fw, kv_type, ggml, wl))


_KV: ByIdentity[tuple[int, str]] = ByIdentity()


def _kv_of(
    ref: VariantRef, fw: Framework, kv_type: str, ggml: bool, wl: Workload
) -> tuple[int, str]:
    arch = ref.variant.arch
    assert arch is not None
    if mlx.uses_mlx(fw):
        size = mlx.kv_cache_bytes(fw, arch, wl.context_tokens, wl.sequences)
        return size, mlx.kv_layout(fw, arch)
    runtime = runtime_of(fw.id, ggml)
    image = ref.variant.image
    if image is not None and image.cross_attention_layers:
        # Cross-attention layers cache the image's states, not the text (Llama 3.2
        # Vision): only the self-attention layers hold the context.
        text_layers = arch.layers - image.cross_attention_layers
        text = kv_cache_bytes(
            dataclasses.replace(arch, layers=text_layers, local_layers=0),
            wl.context_tokens,
            sequences=wl.sequences,
            cache_type=kv_type,
            runtime=runtime,
            swa_full=wl.swa_full,
        )
        cross = cross_attention_kv(arch, image, KV_BYTES[kv_type]) * wl.sequences
        return text + cross, kv_type
    size = kv_cache_bytes(
        arch,
        wl.context_tokens,
        sequences=wl.sequences,
        cache_type=kv_type,
        runtime=runtime,
        swa_full=wl.swa_full,
    )
    return size, kv_type


def _with_image(over: Overheads, ref: VariantRef) -> Overheads:
    """A VLM's vision tower encoding one image: its activations come on top of the decoder's
    buffers (llama.cpp's mtmd keeps a separate compute buffer for the tower)."""
    v = ref.variant
    if v.encoder is None or v.image is None:
        return over
    act = vision_activations(v.encoder, v.image)
    image = v.image
    if image.cross_attention_layers:
        where = (
            f"its {image.cross_tokens:,} encoded positions are cached in "
            f"{image.cross_attention_layers} cross-attention layers (in the KV cache above)"
        )
    else:
        where = f"it takes {image.tokens:,} tokens of the context"
    shape = f"{image.size}x{image.size}"
    if image.tiles > 1:
        shape = f"{image.tiles} tiles of {shape}"
    line = (
        f"vision tower: {format_bytes(act)} to encode one image ({shape}, "
        f"{v.encoder.max_tokens * image.tiles:,} patches; {where}; estimate)"
    )
    # An amount: a term on each device (the breakdown adds up exactly what it counts).
    terms = (Term("gpu-compute", act, _on(line, "GPU")), Term("cpu-compute", act, _on(line, "CPU")))
    return replace(
        over,
        gpu_compute=over.gpu_compute + act,
        cpu_compute=over.cpu_compute + act,
        terms=(*over.terms, *terms),
    )


def _published_floor(
    variant: Variant, fw: Framework, p: prec.Precision, wl: Workload
) -> Requirement | None:
    """The largest published VRAM need that applies to this exact setting."""
    best = None
    for r in variant.requirements:
        if r.resource != "vram" or r.offload or r.kind == "recommended":
            continue
        if r.framework not in (None, fw.id):
            continue
        if r.precision is not None and r.precision.lower() != p.name.lower():
            continue
        if r.resolution is not None and wl.resolution not in (None, r.resolution):
            continue
        if r.batch is not None and (wl.batch or 1) < r.batch:
            continue
        if r.seq_len is not None:
            continue  # length-dependent figures: see _by_length
        if best is None or r.amount_bytes > best.amount_bytes:
            best = r
    return best


def _by_length(variant: Variant, fw: Framework, wl: Workload) -> tuple[int, str] | None:
    """GPU memory for a sequence length from published points (AlphaFold).

    The smallest published point at or above the requested length is used as
    it stands (never scaled down: that could under-estimate); beyond the
    largest, it grows with the square of the length, like the N x N pair
    representation (an estimate, and said so). Without --seq-len, the first
    published point sets the length.
    """
    rows = sorted(
        (
            r
            for r in variant.requirements
            if r.resource == "vram" and r.seq_len and not r.offload and r.framework in (None, fw.id)
        ),
        key=lambda r: r.seq_len or 0,
    )
    if not rows:
        return None
    length = wl.seq_len or rows[0].seq_len or 0
    for r in rows:
        if length <= (r.seq_len or 0):
            return r.amount_bytes, (
                f"{length:,} residues/tokens: published {r.amount} for up to {r.seq_len:,} "
                f"({r.condition or r.kind})"
            )
    top = rows[-1]
    scaled = round(top.amount_bytes * (length / (top.seq_len or 1)) ** 2)
    return scaled, (
        f"{length:,} residues/tokens: {top.amount} published for {top.seq_len:,}, scaled by "
        "length squared (estimate)"
    )


def build_need(
    ref: VariantRef,
    fw: Framework,
    p: prec.Precision,
    w: Weights,
    wl: Workload,
    backends: tuple[Backend, ...] = (),
) -> tuple[Need, str]:
    """What this variant needs at this precision on this framework, and the KV cache type.

    Published figures are floors: a sequence-length figure (AlphaFold) or a
    published VRAM requirement for this exact setting raises the GPU need, and
    the breakdown says so.
    """
    m, v = ref.model, ref.variant
    if m.kind in DECODERS and v.arch is not None:
        kv, kv_type, over = _decoder_parts(ref, fw, p, wl, backends)
        need = Need(
            w.bytes,
            kv,
            over,
            layer_weights=w.layers or None,
            layer_kv=kv / v.arch.layers,
            heads=v.arch.heads,
            precision=p.name,
            family=p.family,
        )
    else:
        kv, kv_type = _kv(ref, fw, p, wl)
        over = other_overheads(fw, m, v, w.bytes, wl, p.family, backends)
        per_param = w.bytes / v.params.total if v.params else 0
        largest = max((round(c.params * per_param) for c in v.components), default=None)
        staged = offload_peak(v, per_param, wl) if fw.partial_offload else None
        if staged is not None:
            # A note, not an amount of this total: it describes the offload placement.
            line = (
                f"with CPU offload by stage ({fw.name}) the GPU holds only the largest stage "
                f"with its activations ({format_bytes(staged)}) and RAM all the weights"
            )
            over = replace(over, lines=(*over.lines, line))
        need = Need(
            w.bytes,
            kv,
            over,
            largest_component=largest if fw.partial_offload else None,
            offload_peak=staged,
            precision=p.name,
            family=p.family,
        )
    by_length = _by_length(v, fw, wl) if m.kind == "protein" else None
    if by_length is not None:
        need = _raise_to(
            need, by_length[0], f"to reach the GPU memory for {by_length[1]}", card=True
        )
    floor = _published_floor(v, fw, p, wl)
    if floor is not None:
        line = (
            f"to reach the published {floor.amount} ({floor.condition or floor.kind}; "
            f"{_src(m, floor.source)})"
        )
        need = _raise_to(need, floor.amount_bytes, line)
    return need, kv_type


def _decoder_parts(
    ref: VariantRef,
    fw: Framework,
    p: prec.Precision,
    wl: Workload,
    backends: tuple[Backend, ...],
) -> tuple[int, str, Overheads]:
    """A decoder's KV cache (bytes, type) and overheads with ``fw``: the same for most
    precisions of a family, so worked out once per variant, framework and what of the
    precision they depend on (fp32's KV cache type, llama.cpp's repacked types)."""
    kind = _PARTS_KINDS.get((p.name, p.family)) or _parts_kind(p)
    v = ref.variant
    key = (id(v), id(fw), id(wl), id(backends), kind)
    hit = _PARTS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    parts = _decoder_parts_of(ref, fw, p, wl, backends)
    return _PARTS.keep(key, (v, fw, wl, backends), parts)


_PARTS: ByIdentity[tuple[int, str, Overheads]] = ByIdentity()
# What of a precision its parts depend on, by name and family: the family, fp32's KV cache
# type, the name of a type llama.cpp repacks. One string, so the memo's key stays short.
_PARTS_KINDS: dict[tuple[str, str], str] = {}


def _parts_kind(p: prec.Precision) -> str:
    name = p.name
    if name.upper().startswith(REPACKED_PREFIXES):
        kind = f"{p.family}:{name}"
    else:
        kind = f"{p.family}:fp32" if name == "fp32" else p.family
    _PARTS_KINDS[name, p.family] = kind
    return kind


def _decoder_parts_of(
    ref: VariantRef,
    fw: Framework,
    p: prec.Precision,
    wl: Workload,
    backends: tuple[Backend, ...],
) -> tuple[int, str, Overheads]:
    arch = ref.variant.arch
    assert arch is not None
    kv, kv_type = _kv(ref, fw, p, wl)
    if mlx.uses_mlx(fw):
        over = mlx.overheads(fw, arch, wl, backends)
    else:
        over = llm_overheads(fw, arch, wl, p.family, backends, p.name)
    return kv, kv_type, _with_image(over, ref)


def _raise_to(need: Need, published: int, line: str, *, card: bool = False) -> Need:
    """Raise the need to a published figure.

    A required or measured amount ("~10 GB of VRAM") is a floor for the total
    (weights + KV + overheads), on the GPU and, where the model runs on the CPU
    instead, in RAM; headroom comes on top. A card size ("fits on one 80 GB
    A100", ``card=True``) is what that card leaves after canirun's headroom, so
    the same card fits and a smaller one does not.
    """
    if card:
        published -= max(GPU_HEADROOM_MIN, round(published * GPU_HEADROOM_SHARE))
    over = need.overheads
    gpu_now = need.weights + need.kv + over.gpu_compute + over.gpu_per_device
    cpu_now = need.weights + need.kv + over.cpu_compute + over.cpu_process
    if published <= gpu_now and published <= cpu_now:
        return need
    gpu_extra = max(0, published - gpu_now)
    cpu_extra = max(0, published - cpu_now)
    terms = list(over.terms)
    if gpu_extra:
        terms.append(
            Term(
                "gpu-compute",
                gpu_extra,
                f"published floor: {format_bytes(gpu_extra)} more on the GPU, {line}",
            )
        )
    if cpu_extra:
        terms.append(
            Term(
                "cpu-compute",
                cpu_extra,
                f"published floor: {format_bytes(cpu_extra)} more in RAM, {line}",
            )
        )
    raised = replace(
        over,
        gpu_compute=over.gpu_compute + gpu_extra,
        cpu_compute=over.cpu_compute + cpu_extra,
        terms=tuple(terms),
    )
    return replace(need, overheads=raised)


def _src(m: Model, source: str) -> str:
    return m.sources.get(source, source)
