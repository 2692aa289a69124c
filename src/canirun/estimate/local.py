"""Rate a model file or folder (a ``LocalModel``) with the same code as catalog models.

The file's own headers replace the catalog's figures: weights are the exact sum
of its tensors (split per layer for offload), and only the file's own
precision is rated, with the frameworks that read its format. The KV cache and
runtime overheads come from ``need``/``runtime`` exactly as for a catalog
entry, through a catalog-shaped record built from the file. When the file does
not tell enough to size the KV cache, the verdict is ``unknown`` (or
``too-big`` when the weights alone cannot fit), with the missing field named.
"""

from __future__ import annotations

import re
from dataclasses import replace

import msgspec

from canirun.catalog.loader import Catalog, VariantRef
from canirun.catalog.local_model import LocalModel
from canirun.catalog.schema import Category, Framework, Kind, Modality, Model, Params, Variant
from canirun.estimate import precision as prec
from canirun.estimate import rate
from canirun.estimate.capacity import Capacity
from canirun.estimate.need import DECODERS
from canirun.estimate.placement import Need, place
from canirun.estimate.results import RUNNABLE, MemoryEstimate, Result, Summary, rank
from canirun.estimate.runtime import fixed_overheads
from canirun.estimate.weights import Weights
from canirun.units import format_bytes

CATEGORY: dict[Kind, Category] = {
    "llm": "foundation",
    "vlm": "multimodal",
    "embedding": "embeddings",
    "diffusion": "vision",
    "speech": "speech",
    "vision": "vision",
}
MODALITIES: dict[Kind, list[Modality]] = {
    "llm": ["text"],
    "vlm": ["text", "image"],
    "embedding": ["embedding"],
}


def local_precision(local: LocalModel) -> prec.Precision:
    """The catalog precision of that name, or one made from the file (IQ4_XS, MXFP4_MOE)."""
    known = prec.lookup(local.precision)
    family: prec.Family = "ggml" if local.format == "gguf" else "torch"
    if known is not None and known.family == family:
        return known
    bits = round(local.bits_per_weight, 3)
    return prec.Precision(local.precision, family, bits, 0, f"{local.precision}, as in the file")


def local_weights(local: LocalModel) -> Weights:
    what = "tensors" if local.format != "pytorch" else "checkpoint files"
    parts = f" in {len(local.files)} files" if len(local.files) > 1 else ""
    return Weights(
        bytes=local.weights_bytes,
        how=f"exact: the sum of the file's {what}{parts} ({local.precision})",
        source=local.path,
        estimate=local.format == "pytorch",
        layers=local.layer_bytes,
        active_fraction=local.active_fraction,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._+-]+", "-", text.lower()).strip("-.") or "model"


def local_ref(local: LocalModel, catalog: Catalog) -> VariantRef:
    """A catalog-shaped record of the file, so that the catalog's rating code applies.

    Built without pydantic: the parts come from validated records (the file's
    ``Arch``), and the model's sources are the file itself, not URLs; the records'
    own consistency checks (``__post_init__``) still run.
    """
    p = local_precision(local)
    frameworks = [
        f.id
        for f in catalog.frameworks
        if f.local and local.kind in f.serves and _reads(f, local.format, p)
    ]
    variant = Variant(
        key=_slug(local.precision),
        name=local.name,
        aliases=[],
        hf_repo=None,
        params=Params(source="file", total=max(1, local.params)),
        arch=local.arch,
        encoder=local.encoder,
        output=None,
        components=[],
        files=[],
        requirements=[],
        notes=None,
    )
    model = Model(
        id=_slug(local.name),
        name=local.name,
        family=_slug(local.architecture or "local"),
        category=CATEGORY.get(local.kind, "foundation"),
        task="text-generation" if local.kind in DECODERS else local.kind,
        kind=local.kind,
        access="open-weights",
        access_note=None,
        license="see the model's files",
        modalities=MODALITIES.get(local.kind, ["text"]),
        aliases=[],
        frameworks=frameworks,
        formats=[local.format],
        native_dtype=None,
        api=None,
        needs=None,
        sources={"file": local.path},
        notes=None,
        variants=[variant],
    )
    return VariantRef(model, variant)


def _reads(fw: Framework, fmt: str, p: prec.Precision) -> bool:
    # A pytorch .bin checkpoint is read by whatever reads safetensors checkpoints.
    formats = set(fw.formats) | ({"pytorch"} if "safetensors" in fw.formats else set())
    return fmt in formats and (not fw.precisions or p.name in fw.precisions)


def rate_local(
    local: LocalModel, catalog: Catalog, cap: Capacity, opts: rate.Options, model_id: str
) -> tuple[list[Result], Summary]:
    """Results (one per precision: the file's own) and the summary for one local model."""
    ref = local_ref(local, catalog)
    p, w = local_precision(local), local_weights(local)
    workload, notes = rate.effective_workload(ref, opts.workload)
    if opts.precisions and p.name not in opts.precisions:
        notes = (
            *notes,
            f"rated at the file's own precision, {p.name}: --precision picks catalog ones",
        )
    opts = msgspec.structs.replace(opts, workload=workload)
    fws, why_not = rate.frameworks_for(ref, catalog, cap)
    if opts.framework:
        fws = [f for f in fws if f.id == opts.framework]
    if not fws:
        reasons = why_not or [f"no framework in the catalog reads {local.format} {p.name} here"]
        results = [_plain(ref, p, "unsupported", tuple(reasons), local)]
    elif local.kind in DECODERS and local.arch is None:
        results = [_kv_unknown(ref, p, w, fws, cap, local)]
    else:
        results = [_rated(ref, p, w, fws, cap, opts, local)]
    results = [replace(r, model_id=model_id, reasons=(*r.reasons, *notes)) for r in results]
    summary = rate.summarize(ref, results, catalog, cap, opts, (p, w))
    return results, replace(summary, model_id=model_id)


def _rated(
    ref: VariantRef,
    p: prec.Precision,
    w: Weights,
    fws: list[Framework],
    cap: Capacity,
    opts: rate.Options,
    local: LocalModel,
) -> Result:
    evals = rate._evaluate(ref, fws, p, cap, opts, w)
    if not evals:
        reasons = (f"no framework here runs {local.format} {p.name}",)
        return _plain(ref, p, "unsupported", reasons, local, w)
    best = rate._pick(evals, cap, [f.id for f in fws])
    usable = [e.framework.id for e in evals if e.placement.verdict in RUNNABLE]
    result = rate._result(ref, best, cap, opts, usable)
    if cap.nodes and result.verdict not in ("gpu", "multi-gpu"):
        from canirun.estimate.multinode_rate import across_nodes

        result = across_nodes(ref, evals, cap, opts, result)
    return replace(result, format=local.format, reasons=(*result.reasons, *local.notes))


def _kv_unknown(
    ref: VariantRef,
    p: prec.Precision,
    w: Weights,
    fws: list[Framework],
    cap: Capacity,
    local: LocalModel,
) -> Result:
    """No KV figure: ``too-big`` when the weights and fixed costs alone cannot fit, else
    ``unknown`` -- a fit that depends on an unknown is never claimed."""
    floors = [
        place(
            Need(w.bytes, 0, fixed_overheads(fw, p.family), layer_weights=w.layers or None), cap, fw
        )
        for fw in fws
    ]
    why = f"KV cache unknown: {local.arch_missing or 'the architecture is not in the file'}"
    if all(pl.verdict == "too-big" for pl in floors):
        reasons = (f"the weights alone ({format_bytes(w.bytes)}) do not fit here", why)
        verdict = "too-big"
    else:
        best = min(floors, key=lambda pl: rank(pl.verdict))
        reasons = (why, f"the weights alone ({format_bytes(w.bytes)}) would fit: {best.verdict}")
        verdict = "unknown"
    return _plain(ref, p, verdict, (*reasons, *local.notes), local, w)


def _plain(
    ref: VariantRef,
    p: prec.Precision,
    verdict: str,
    reasons: tuple[str, ...],
    local: LocalModel,
    w: Weights | None = None,
) -> Result:
    memory = None
    if w is not None:
        memory = MemoryEstimate(
            weights_bytes=w.bytes,
            kv_cache_bytes=None,
            overhead_bytes=None,
            total_bytes=None,
            breakdown=(f"weights: {format_bytes(w.bytes)}, {w.how}",),
        )
    return Result(
        **rate._base(ref),
        precision=p.name,
        format=local.format,
        context_tokens=None,
        verdict=verdict,  # type: ignore[arg-type]
        memory=memory,
        reasons=reasons,
        sources=(local.path,),
    )
