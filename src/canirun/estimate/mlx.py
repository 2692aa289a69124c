"""What mlx-lm (Apple's MLX) needs besides the weights: its KV cache and compute memory.

Read from mlx-lm 0.32.0 (ml-explore/mlx-lm at d78bf58, 2026-08-22) and MLX's Metal
attention dispatch; the catalog's ``frameworks.toml`` entry says which architectures
mlx-lm implements and which of them cap or compress their cache.

* KV cache (mlx_lm/models/cache.py): ``KVCache`` grows in steps of 256 tokens and holds
  the whole context in the model's 16-bit activation dtype; a model whose ``make_cache``
  gives sliding-window layers a ``RotatingKVCache(max_size=sliding_window)`` (or Llama 4's
  ``ChunkedKVCache``) keeps only the window there. Models without one (Gemma 2 in mlx-lm)
  cache the whole context on every layer. DeepSeek-V3 caches the MLA latent since
  mlx-lm #839 (2026-02).
* Compute: ``generate`` prefills in chunks of ``prefill_step_size`` = 2048 tokens. MLX's
  fused attention kernel for prefill (``sdpa_full``) takes head dims 64, 80 and 128 only;
  other head dims take the unfused path, which materialises the chunk x context score
  matrix of one layer (estimate: scores and softmax output, 16-bit each).
"""

from __future__ import annotations

from canirun.catalog.schema import Arch, Backend, Framework
from canirun.estimate.kv import elements_per_token_layer
from canirun.estimate.results import Workload
from canirun.estimate.runtime import Overheads, _torch_llm_activations, gpu_reserve
from canirun.units import format_bytes

MLX_FRAMEWORKS = frozenset({"mlx-lm"})
KV_STEP = 256  # KVCache.step / RotatingKVCache.step
PREFILL_STEP = 2048  # mlx_lm.generate prefill_step_size
FUSED_HEAD_DIMS = frozenset({64, 80, 128})  # MLX Metal sdpa_full_supported_head_dim
KV_BYTES = 2  # keys/values in the model's bf16/fp16 activation dtype
SOURCE = "https://github.com/ml-explore/mlx-lm/blob/d78bf58e217c904ec282ed8da9b947491f78c022/mlx_lm/models/cache.py"


def uses_mlx(framework: Framework) -> bool:
    return framework.id in MLX_FRAMEWORKS


def _flags(framework: Framework, arch: Arch) -> tuple[bool, bool]:
    impl = framework.implements
    name = arch.gguf_arch or ""
    if impl is None:
        return False, False
    return name in impl.windowed, name in impl.latent_kv


def kv_cache_bytes(framework: Framework, arch: Arch, context: int, sequences: int = 1) -> int:
    """mlx-lm's KV cache for ``sequences`` sequences of ``context`` tokens."""
    windowed, latent = _flags(framework, arch)
    cached = -(-context // KV_STEP) * KV_STEP
    per_token_layer = elements_per_token_layer(arch, "vllm" if latent else "transformers")
    local = arch.local_layers if windowed else 0
    window = min(cached, arch.sliding_window or cached)
    tokens = (arch.layers - local) * cached + local * window
    return per_token_layer * tokens * KV_BYTES * sequences


def kv_layout(framework: Framework, arch: Arch) -> str:
    windowed, latent = _flags(framework, arch)
    parts = ["bf16/fp16, whole context"]
    if windowed and arch.local_layers:
        parts.append(f"{arch.local_layers} window layers keep {arch.sliding_window:,} tokens")
    if latent:
        parts.append("MLA latent")
    return "; ".join(parts) + " (mlx-lm)"


def _scores(arch: Arch, chunk: int, context: int, sequences: int) -> int:
    if arch.effective_head_dim in FUSED_HEAD_DIMS and not arch.is_mla:
        return 0
    return chunk * context * arch.heads * 4 * sequences


def overheads(
    framework: Framework, arch: Arch, workload: Workload, backends: tuple[Backend, ...] = ()
) -> Overheads:
    """Compute memory of one prefill chunk, plus the framework's documented reserves."""
    seqs = workload.sequences
    chunk = min(workload.context_tokens, PREFILL_STEP)
    act = _torch_llm_activations(arch, chunk * seqs, seqs)
    scores = _scores(arch, chunk, workload.context_tokens, seqs)
    lines = [
        f"activations: {format_bytes(act)} for one {chunk:,}-token prefill chunk "
        f"(mlx-lm prefill_step_size {PREFILL_STEP}; estimate)"
    ]
    if scores:
        lines.append(
            f"attention scores: {format_bytes(scores)} (head dim {arch.effective_head_dim} has "
            "no fused MLX prefill kernel: one layer's chunk x context scores; estimate)"
        )
    reserve = gpu_reserve(framework, "mlx")
    gpu = [o for o in framework.overheads if o.device == "gpu"]
    cpu = [o for o in framework.overheads if o.device == "cpu"]
    lines += [f"{o.what}: {o.amount} ({framework.name})" for o in (*gpu, *cpu)]
    by_backend = tuple(
        (b.id, b.torch_context_bytes + gpu_reserve(framework, b.id)) for b in backends
    )
    return Overheads(
        gpu_per_device=reserve,
        gpu_compute=act + scores,
        cpu_compute=act + scores,
        cpu_process=sum(o.amount_bytes for o in cpu),
        gpu_fraction=1.0,
        lines=tuple(lines),
        by_backend=by_backend,
    )


# mlx_lm.generate's wired_limit(): a model above 90 % of max_recommended_working_set_size
# gets "[WARNING] Generating with a model that requires ... This can be slow."
WIRED_WARNING_SHARE = 0.9


def wired_warning(weights_bytes: int, budget: int | None) -> str | None:
    """mlx-lm's own slowness warning, when this model would trigger it on this GPU."""
    if budget is None or weights_bytes <= WIRED_WARNING_SHARE * budget:
        return None
    return (
        f"the weights ({format_bytes(weights_bytes)}) pass 90% of the GPU's working set "
        f"({format_bytes(budget)}): mlx-lm warns 'This can be slow'; "
        "`sudo sysctl iogpu.wired_limit_mb=N` raises the limit (mlx-lm README, Large Models)"
    )
