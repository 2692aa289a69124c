"""Serving one model across several GPUs and nodes, placed the way vLLM places it.

Pure functions over figures: no catalog lookups, no I/O. The rules are vLLM's
own (read in its source, v0.33.0; see docs/cluster.md):

- the attention heads divide by the tensor-parallel size (TP), and the KV heads
  follow it: TP >= kv_heads needs TP % kv_heads == 0 (each KV head is then
  replicated TP / kv_heads times), else kv_heads % TP == 0
  (``ModelConfig.verify_with_parallel_config``, ``QKVParallelLinear``);
- TP stays within a node, pipeline parallelism (PP) goes across nodes ("set
  tensor_parallel_size to the number of GPUs per node and
  pipeline_parallel_size to the number of nodes", docs/serving/parallelism_scaling);
- layers split over PP stages as ``get_pp_indices`` splits them;
- every GPU gets ``total x gpu_memory_utilization``, and must have that much free
  at start-up; weights, activation peak, non-torch memory and the KV cache for at
  least one ``max_model_len`` sequence must fit in it;
- PP > 1 needs a model class that implements ``SupportsPP``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from canirun.units import format_gib


class NodeGpus(msgspec.Struct, frozen=True):
    """One node as the planner sees it: a name and each GPU's budget in bytes."""

    name: str
    budgets: tuple[int | None, ...]  # None: free memory unknown
    gpu_name: str | None = None


class ModelShape(msgspec.Struct, frozen=True):
    """What the split needs to know about one model at one precision."""

    heads: int
    kv_heads: int
    layer_bytes: tuple[int, ...]  # weights of each repeating layer
    other_bytes: int  # embeddings, output head, norms: on the first and last stages
    kv_layer_bytes: int  # KV cache of one layer, all KV heads, at the context asked
    per_gpu_bytes: int  # activation peak, CUDA graphs, non-torch memory: on every GPU
    pipeline_ok: bool | None  # the model class supports PP; None: not known


class Layout(msgspec.Struct, frozen=True):
    tensor: int
    pipeline: int
    nodes: tuple[str, ...]
    stage_layers: tuple[int, ...]
    per_gpu_bytes: int  # the fullest GPU
    budget_bytes: int  # the smallest budget among the GPUs used
    reasons: tuple[str, ...] = ()

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline


class Shortfall(msgspec.Struct, frozen=True):
    """No layout fits: what is missing, in words a cluster owner can act on."""

    reasons: tuple[str, ...]
    unknown: bool = False  # a figure the decision needs is missing


def tensor_sizes(heads: int, kv_heads: int, limit: int) -> tuple[int, ...]:
    """Tensor-parallel sizes vLLM accepts for these heads, up to ``limit`` GPUs."""
    out = []
    for tp in range(1, limit + 1):
        if heads % tp:
            continue
        if tp >= kv_heads and tp % kv_heads:
            continue
        if tp < kv_heads and kv_heads % tp:
            continue
        out.append(tp)
    return tuple(out)


def stage_layers(layers: int, stages: int) -> tuple[int, ...]:
    """Layers per pipeline stage, as vLLM's ``get_pp_indices`` assigns them.

    Every stage gets ``layers // stages``; the remainder goes one each to the
    stages before the last, counting back from the second-to-last
    (80 over 3 -> 27, 27, 26; 70 over 4 -> 17, 18, 18, 17).
    """
    base, rest = divmod(layers, stages)
    counts = [base] * stages
    for i in range(rest):
        counts[stages - 2 - i if stages > 1 else 0] += 1
    return tuple(counts)


def kv_heads_per_gpu(kv_heads: int, tp: int) -> int:
    return max(1, kv_heads // tp)


def per_gpu_need(shape: ModelShape, tp: int, pp: int) -> int:
    """Bytes on the fullest GPU of a TP x PP layout.

    Embedding and output head are counted whole on both the first and the last
    stage: the real split puts one on each, so this errs high, never low.
    """
    counts = stage_layers(len(shape.layer_bytes), pp)
    share = kv_heads_per_gpu(shape.kv_heads, tp) / shape.kv_heads
    worst, start = 0, 0
    for i, n in enumerate(counts):
        weights = sum(shape.layer_bytes[start : start + n])
        start += n
        if i in (0, pp - 1):
            weights += shape.other_bytes
        kv = shape.kv_layer_bytes * n * share
        worst = max(worst, round(weights / tp + kv) + shape.per_gpu_bytes)
    return worst


def _usable(nodes: Sequence[NodeGpus]) -> list[NodeGpus]:
    # Most GPUs first, then the largest smallest budget: the nodes vLLM's PACK fills first.
    return sorted(
        nodes,
        key=lambda n: (len(n.budgets), min((b or 0 for b in n.budgets), default=0)),
        reverse=True,
    )


def plan(shape: ModelShape, nodes: Sequence[NodeGpus]) -> Layout | Shortfall:
    """The smallest layout over whole nodes: fewest nodes, then the largest TP.

    Within the chosen nodes TP is the largest valid size that fits in every
    node and PP fills the rest of their GPUs, as vLLM's docs advise. A single
    node is tried too (TP x PP inside it) so the caller can compare.
    """
    ranked = [n for n in _usable(nodes) if n.budgets]
    if not ranked:
        return Shortfall(("the cluster has no GPUs",))
    if any(b is None for n in ranked for b in n.budgets):
        names = ", ".join(n.name for n in ranked if any(b is None for b in n.budgets))
        return Shortfall((f"free GPU memory unknown on {names}",), unknown=True)
    layers = len(shape.layer_bytes)
    closest: tuple[int, int, int, int] | None = None  # (need, budget, tp, pp)
    for count in range(1, len(ranked) + 1):
        chosen = ranked[:count]
        per_node = min(len(n.budgets) for n in chosen)
        budget = min(b or 0 for n in chosen for b in n.budgets[:per_node])
        for tp in reversed(tensor_sizes(shape.heads, shape.kv_heads, per_node)):
            pp = count * (per_node // tp)
            if pp > layers or (pp > 1 and shape.pipeline_ok is False):
                continue
            if pp > 1 and shape.pipeline_ok is None:
                continue
            need = per_gpu_need(shape, tp, pp)
            if need <= budget:
                return Layout(
                    tensor=tp,
                    pipeline=pp,
                    nodes=tuple(n.name for n in chosen),
                    stage_layers=stage_layers(layers, pp),
                    per_gpu_bytes=need,
                    budget_bytes=budget,
                    reasons=_layout_reasons(tp, pp, count, need, budget),
                )
            if closest is None or need - budget < closest[0] - closest[1]:
                closest = (need, budget, tp, pp)
    return _shortfall(shape, ranked, closest)


def _layout_reasons(tp: int, pp: int, nodes: int, need: int, budget: int) -> tuple[str, ...]:
    where = f"{nodes} nodes" if nodes > 1 else "one node"
    return (
        f"tensor parallel {tp} x pipeline parallel {pp} over {where}: "
        f"{format_gib(need)} on the fullest GPU of {format_gib(budget)} each",
    )


def _shortfall(
    shape: ModelShape, ranked: list[NodeGpus], closest: tuple[int, int, int, int] | None
) -> Shortfall:
    reasons = []
    if shape.pipeline_ok is False:
        reasons.append("vLLM has no pipeline parallelism for this model: one node must hold it")
    elif shape.pipeline_ok is None:
        reasons.append("vLLM's pipeline-parallel support for this model is not known")
    if closest is not None:
        need, budget, tp, pp = closest
        gpus = tp * pp
        total = sum(len(n.budgets) for n in ranked)
        reasons.append(
            f"closest layout, TP {tp} x PP {pp}, needs {format_gib(need)} per GPU; "
            f"the GPUs have {format_gib(budget)}"
        )
        # How many GPUs of this size would do: the whole need spread evenly.
        body = sum(shape.layer_bytes) + shape.other_bytes
        per = max(1, budget - shape.per_gpu_bytes)
        wanted = -(-(body + shape.kv_layer_bytes * len(shape.layer_bytes)) // per)
        if wanted > total:
            nodes = f"{len(ranked)} node{'s' if len(ranked) != 1 else ''}"
            reasons.append(
                f"at least {wanted} GPUs of this size are needed; the cluster has {total} "
                f"in {nodes}"
            )
        elif gpus < total:
            reasons.append("no split the heads allow fits on the GPUs there are")
    return Shortfall(tuple(reasons) or ("no layout fits",), unknown=shape.pipeline_ok is None)


def vllm_command(model: str, layout: Layout, context: int, utilization: float) -> str:
    parts = [
        f"vllm serve {model}",
        f"--tensor-parallel-size {layout.tensor}",
    ]
    if layout.pipeline > 1:
        parts.append(f"--pipeline-parallel-size {layout.pipeline}")
    if len(layout.nodes) > 1:
        parts.append("--distributed-executor-backend ray")
    parts += [f"--max-model-len {context}", f"--gpu-memory-utilization {utilization:g}"]
    return " ".join(parts)


def placement_bundles(layout: Layout) -> tuple[dict[str, float], ...]:
    """The Ray placement group vLLM asks for: one GPU per worker, PACK strategy."""
    return tuple({"GPU": 1.0} for _ in range(layout.gpus))
