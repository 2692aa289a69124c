"""The multi-node option of one variant at one precision: vLLM over the cluster's nodes.

``rate`` asks for it when a cluster is known and one machine cannot hold the
model on its GPUs. The figures come from the same need the single-machine
rating used (weights per layer, KV cache, per-GPU overheads); the split rules
are ``multinode``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec

from canirun.estimate.capacity import Capacity, ClusterNode
from canirun.estimate.placement import gpu_budget, usable_gpus
from canirun.estimate.results import MemoryEstimate, Parallel, Result, Speed, rank
from canirun.estimate.speed import EFFICIENCY
from canirun.units import format_bytes, format_gib

if TYPE_CHECKING:
    from canirun.catalog.loader import VariantRef
    from canirun.catalog.schema import Framework
    from canirun.estimate import multinode as mn
    from canirun.estimate.rate import Options, _Eval

NETWORK_NOTE = (
    "pipeline stages run one after another and hand activations over the network between "
    "nodes; that latency is not in the estimate, so the speed is an upper range"
)


def _shape(ref: VariantRef, e: _Eval) -> mn.ModelShape | None:
    from canirun.estimate import multinode as mn  # only with a cluster (start-up time)

    arch, w = ref.variant.arch, e.weights
    if arch is None or not w.layers:
        return None
    fw = e.framework
    listed = fw.multi_node.pipeline_archs if fw.multi_node else ()
    over = e.need.overheads
    return mn.ModelShape(
        heads=arch.heads,
        # MLA caches one latent "head" per token that every TP rank keeps whole
        # (vLLM's deepseek_v2 attention): it is replicated, never split.
        kv_heads=1 if arch.is_mla else arch.kv_heads,
        layer_bytes=w.layers,
        other_bytes=max(0, w.bytes - sum(w.layers)),
        kv_layer_bytes=round(e.need.kv / arch.layers),
        per_gpu_bytes=over.gpu_per_device + over.gpu_compute,
        pipeline_ok=(arch.gguf_arch in listed) if arch.gguf_arch else None,
    )


def _nodes(cap: Capacity, fw: Framework, fraction: float) -> list[tuple[ClusterNode, mn.NodeGpus]]:
    from canirun.estimate import multinode as mn

    out = []
    for node in cap.nodes:
        slots, _, doubts = usable_gpus(msgspec.structs.replace(cap, gpus=node.gpus), fw)
        # A GPU the framework may not drive (compute capability unknown) is unknown.
        budgets = tuple(gpu_budget(s, fraction) for s in slots) + tuple(None for _ in doubts)
        name = slots[0].name if slots else None
        out.append((node, mn.NodeGpus(node.name, budgets, name)))
    return out


def _speed(nodes: Sequence[ClusterNode], layout: mn.Layout, per_token: int) -> Speed:
    chosen = [n for n in nodes if n.name in layout.nodes]
    bandwidths = [s.bandwidth_bytes_per_s for n in chosen for s in n.gpus]
    if not bandwidths or any(b is None for b in bandwidths):
        return Speed(None, None, None, None, per_token, EFFICIENCY, "gpu", "GPU bandwidth unknown")
    # Each token passes every stage in turn; within a stage TP GPUs read their shards at once.
    bandwidth = min(b or 0 for b in bandwidths) * layout.tensor
    low, high = (bandwidth * eff / per_token for eff in EFFICIENCY)
    return Speed(
        round((low + high) / 2, 1),
        round(low, 1),
        round(high, 1),
        bandwidth,
        per_token,
        EFFICIENCY,
        "gpu",
        NETWORK_NOTE,
    )


def _plan_one(
    ref: VariantRef, e: _Eval, cap: Capacity, opts: Options, base: Result
) -> Result | mn.Shortfall | None:
    from canirun.estimate import multinode as mn

    fw = e.framework
    shape = _shape(ref, e)
    if fw.multi_node is None or shape is None:
        return None
    fraction = e.need.overheads.gpu_fraction
    pairs = _nodes(cap, fw, fraction)
    found = mn.plan(shape, [p for _, p in pairs])
    if isinstance(found, mn.Shortfall):
        return found
    ctx = opts.workload.context_tokens
    model = ref.variant.hf_repo or ref.id
    command = mn.vllm_command(model, found, ctx, fraction)
    world = found.gpus
    over = e.need.overheads
    overhead = (over.gpu_per_device + over.gpu_compute) * world
    memory = MemoryEstimate(
        weights_bytes=e.weights.bytes,
        kv_cache_bytes=e.need.kv,
        overhead_bytes=overhead,
        total_bytes=e.weights.bytes + e.need.kv + overhead,
        gpu_bytes=found.per_gpu_bytes * world,
        ram_bytes=over.cpu_process,
        breakdown=(
            f"weights: {format_bytes(e.weights.bytes)}, {e.weights.how}, sharded over "
            f"{found.tensor} GPUs per stage; embeddings and output head counted whole on the "
            "first and last stage (errs high)",
            f"KV cache: {format_bytes(e.need.kv)} at {ctx:,} tokens, split by stage and by KV "
            f"head ({mn.kv_heads_per_gpu(shape.kv_heads, found.tensor)} per GPU)",
            *(t.text for t in over.terms if t.where in ("gpu-device", "gpu-compute")),
            *over.lines,
            f"GPU overheads x {world} GPUs; per GPU: {format_gib(found.per_gpu_bytes)} on the "
            f"fullest one, budget {format_gib(found.budget_bytes)} (total x {fraction:g} less "
            "headroom)",
        ),
    )
    active = round(e.weights.bytes * e.weights.active_fraction)
    nodes = [n for n, _ in pairs]
    parallel = Parallel(
        tensor=found.tensor,
        pipeline=found.pipeline,
        nodes=len(found.nodes),
        node_names=found.nodes,
        stage_layers=found.stage_layers,
        per_gpu_bytes=found.per_gpu_bytes,
        command=command,
        placement_bundles=mn.placement_bundles(found),
    )
    return replace(
        base,
        precision=e.precision.name,
        verdict="multi-node",
        memory=memory,
        framework=fw.id,
        frameworks=tuple(dict.fromkeys((*base.frameworks, fw.id))),
        gpu_layers=None,
        gpus=(),
        headroom_bytes=found.budget_bytes - found.per_gpu_bytes,
        tokens_per_second=_speed(nodes, found, active + e.need.kv),
        reasons=(*found.reasons, f"run it with: {command}"),
        parallel=parallel,
    )


def across_nodes(
    ref: VariantRef, evals: Sequence[_Eval], cap: Capacity, opts: Options, single: Result
) -> Result:
    """The better of the single-machine result and a multi-node layout for this precision.

    A layout that needs a figure the cluster lacks (free memory, pipeline support)
    makes a result that does not run here ``unknown``: never a fit, never "too big".
    """
    from canirun.estimate import multinode as mn

    shortfalls: list[str] = []
    unknown = False
    for e in evals:
        found = _plan_one(ref, e, cap, opts, single)
        if isinstance(found, Result):
            return found if rank(found.verdict) < rank(single.verdict) else single
        if isinstance(found, mn.Shortfall):
            where = f"{len(cap.nodes)} node{'s' if len(cap.nodes) != 1 else ''}"
            shortfalls += [f"{e.framework.name} over {where}: {r}" for r in found.reasons]
            unknown = unknown or found.unknown
    if not shortfalls or single.verdict in ("offload", "cpu"):
        return replace(single, reasons=(*single.reasons, *shortfalls))
    verdict = "unknown" if unknown and single.verdict == "too-big" else single.verdict
    return replace(single, verdict=verdict, reasons=(*single.reasons, *shortfalls))
