"""What the estimator returns: frozen records that the JSON report embeds as they are.

Every result carries its verdict, the numbers it used and its reasons in words.
``None`` means "could not tell", never zero or "enough".
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

from canirun.records import Record, record

Verdict = Literal[
    "gpu",
    "multi-gpu",
    "multi-node",
    "offload",
    "cpu",
    "too-big",
    "unsupported",
    "api-only",
    "unknown",
]

# Best first. `rank` orders verdicts for "the best way to run this here".
VERDICTS: tuple[Verdict, ...] = (
    "gpu",
    "multi-gpu",
    "multi-node",
    "offload",
    "cpu",
    "too-big",
    "unsupported",
    "api-only",
    "unknown",
)
RUNNABLE: frozenset[str] = frozenset({"gpu", "multi-gpu", "multi-node", "offload", "cpu"})

_STRICT: Any = {"extra": "forbid"}


_RANK: dict[str, int] = {v: i for i, v in enumerate(VERDICTS)}


def rank(verdict: str) -> int:
    return _RANK[verdict]


def runs_at(verdict: str, level: str | None) -> bool:
    """The gate rule, in one place: the verdict is runnable and, with a level (gpu,
    multi-gpu, offload, cpu), at that placement or a better one."""
    if verdict not in RUNNABLE:
        return False
    return level is None or rank(verdict) <= rank(level)


@record(slots=True)
class Workload(Record):
    """What the user wants to run: the assumptions every estimate states."""

    __pydantic_config__ = _STRICT

    context_tokens: int = 4096
    sequences: int = 1
    kv_cache_type: str = "f16"
    batch: int | None = None  # None: per kind (32 sentences for embeddings, else 1)
    resolution: int | None = None  # image side in pixels; None: each model's native size
    seq_len: int | None = None  # residues (AlphaFold); None: the published reference length
    # None: each runtime's default (llama.cpp: `-fa auto`, on since PR #15434).
    flash_attention: bool | None = None
    # llama.cpp's --swa-full: sliding-window layers cache the whole context.
    swa_full: bool = False
    # Rate up to the rope-scaled context the model card documents (YaRN...), not the native one.
    extended_context: bool = False


@record(slots=True)
class MemoryEstimate(Record):
    __pydantic_config__ = _STRICT

    weights_bytes: int | None
    kv_cache_bytes: int | None
    overhead_bytes: int | None
    total_bytes: int | None
    # Where the total sits for this verdict's placement.
    gpu_bytes: int | None = None
    ram_bytes: int | None = None
    # One line per term: what it is, how it was computed, where the figure comes from.
    breakdown: tuple[str, ...] = ()


@record(slots=True)
class Speed(Record):
    """Decode speed: usable bandwidth / bytes read per token, as a range, with its inputs."""

    __pydantic_config__ = _STRICT

    tokens_per_second: float | None
    low: float | None
    high: float | None
    bandwidth_bytes_per_s: int | None
    bytes_per_token: int | None
    efficiency: tuple[float, float] = (0.5, 0.6)
    device: str | None = None
    note: str | None = None
    # Prompt processing (prefill) is compute-bound: FLOP/s x efficiency / FLOPs per token.
    prefill_tokens_per_second: float | None = None
    time_to_first_token_s: float | None = None  # for the whole context as the prompt
    compute_flops_per_s: int | None = None
    prefill_note: str | None = None


@record(slots=True)
class Parallel(Record):
    """How one model is split over GPUs: tensor x pipeline parallel, over how many nodes."""

    __pydantic_config__ = _STRICT

    tensor: int
    pipeline: int = 1
    nodes: int = 1
    node_names: tuple[str, ...] = ()
    stage_layers: tuple[int, ...] = ()
    per_gpu_bytes: int | None = None
    command: str | None = None  # the command that runs it, e.g. `vllm serve ...`
    placement_bundles: tuple[dict[str, float], ...] = ()  # the Ray placement group it implies


@record(slots=True)
class Result(Record):
    """One model variant at one precision, rated for one machine."""

    __pydantic_config__ = _STRICT

    model_id: str
    name: str
    family: str
    category: str
    kind: str
    task: str
    access: str
    variant: str
    params: int | None
    precision: str | None
    format: str | None
    context_tokens: int | None
    verdict: Verdict
    memory: MemoryEstimate | None = None
    framework: str | None = None
    frameworks: tuple[str, ...] = ()
    gpu_layers: int | None = None
    total_layers: int | None = None
    gpus: tuple[int, ...] = ()
    headroom_bytes: int | None = None
    disk_bytes: int | None = None
    disk_fits: bool | None = None
    tokens_per_second: Speed | None = None
    reasons: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    # False when the weights are a published file size that is not itself an estimate
    # (KV cache and overheads are always computed).
    estimate: bool = True
    # Mixture-of-experts: parameters used per token (speed); `params` is the total (memory).
    active_params: int | None = None
    # Contexts: the trained one, the rope-scaled one the card documents (used only with
    # --extended-context), and what this result's runtime allocates when none is set.
    native_context: int | None = None
    extended_context: int | None = None
    runtime_default_context: int | None = None
    parallel: Parallel | None = None


@record(slots=True)
class Choice(Record):
    """One way to run a model here, as the summary reports it."""

    __pydantic_config__ = _STRICT

    verdict: Verdict
    precision: str | None
    framework: str | None
    tokens_per_second: float | None = None


@record(slots=True)
class Faster(Record):
    """A clearly quicker way to run a variant than its best-quality one (see estimate.faster)."""

    __pydantic_config__ = _STRICT

    precision: str | None
    framework: str | None
    low: float  # its tokens/s range
    high: float
    best_low: float  # the best-quality option's range, which it beats even at `low`
    best_high: float


@record(slots=True)
class Summary(Record):
    """What canirun recommends running here for one variant (estimate/recommend.py)."""

    __pydantic_config__ = _STRICT

    model_id: str
    name: str
    category: str
    verdict: Verdict
    precision: str | None
    framework: str | None
    max_context_tokens: int | None = None
    tokens_per_second: float | None = None
    reason: str = ""
    results: int = field(default=0)
    # Why this option: the recommendation rule's steps, in words.
    why: tuple[str, ...] = ()
    # The highest-quality option that runs here, whatever its speed.
    best_quality: Choice | None = None
    prefer: str = "balanced"
    disk_fits: bool | None = None
    # Whether this variant meets the --require/--min-tps gate; None without one.
    requirement_met: bool | None = None
    faster: Faster | None = None  # a quicker option when the best-quality one is slow


# The records a rating answers with (rate_variant's results, summarize's summary), all
# positional: fanout sends them between processes by their fields.
RATING_RECORDS: tuple[type[Record], ...] = (
    MemoryEstimate,
    Speed,
    Parallel,
    Result,
    Choice,
    Faster,
    Summary,
)
