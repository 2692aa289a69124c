"""What a serving framework adds on top of the weights and KV cache.

Each constant says where it comes from; the ones no primary source publishes
are labelled estimates. Framework-level facts (Ollama's per-GPU reserve,
ComfyUI's reserve, vLLM's share of VRAM) come from the catalog's
``frameworks.toml``; what depends on the model and the workload (compute
buffers, activations) is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from canirun.catalog.schema import Arch, Backend, Framework, Model, Variant
from canirun.estimate.results import Workload
from canirun.units import format_bytes

MIB = 2**20

# A CUDA context with llama.cpp's kernels. Not published; a few hundred MiB is
# what the field notes report. Estimate.
GGML_CUDA_CONTEXT = 300 * MIB
# PyTorch's CUDA context: 666,632,192 bytes with eager module loading and
# 287,047,680 with lazy loading (PyTorch's default since 1.13), both measured in
# pytorch/pytorch#86509. canirun plans with the larger one. (The Transformers
# docs measured 1.3 GB on CUDA 11.2, before lazy loading existed.)
TORCH_CUDA_CONTEXT = 666_632_192
TORCH_CUDA_CONTEXT_SOURCE = "https://github.com/pytorch/pytorch/pull/86509"
# Resident memory of the process itself on the CPU. llama.cpp: 43 MiB after
# `import llama_cpp` and ~75 MiB more after loading a 128k-vocabulary model
# (tokenizer, output buffers), measured (tests/reference/llamacpp-measured.toml).
# PyTorch: an estimate.
GGML_PROCESS_RAM = 128 * MIB
TORCH_PROCESS_RAM = 1024 * MIB

GGML_FRAMEWORKS = frozenset({"llama.cpp", "ollama", "text-generation-webui", "whisper.cpp"})

# llama.cpp's default physical batch (n_ubatch), which sizes its compute buffers.
LLAMA_CPP_UBATCH = 512
# vLLM's profile run: max_num_batched_tokens for chunked prefill and max_num_seqs.
VLLM_BATCHED_TOKENS = 8192
VLLM_MAX_SEQS = 256


# Where a cost is paid, so a breakdown lists exactly what its total counts:
# "gpu-device" on every GPU used, "gpu-compute" on the GPU doing the work,
# "cpu-compute" when the CPU does it, "process" in RAM always, "cpu-backend" in
# RAM only when the model runs on the CPU (vLLM's CPU KV cache space).
Where = Literal["gpu-device", "gpu-compute", "cpu-compute", "process", "cpu-backend"]


@dataclass(frozen=True, slots=True)
class Term:
    where: Where
    bytes: int
    text: str  # says the amount and where it comes from


@dataclass(frozen=True, slots=True)
class Overheads:
    gpu_per_device: int  # every GPU used: CUDA context and reserves kept free
    gpu_compute: int  # compute buffers / activations on the GPU doing the work
    cpu_compute: int  # the same when the CPU does the work
    cpu_process: int  # the process itself in RAM
    gpu_fraction: float  # share of a GPU's memory the runtime uses at most
    lines: tuple[str, ...]  # notes without an amount of their own (a runtime's cap)
    cpu_backend: int = 0  # reserved in RAM only when the model runs on the CPU
    terms: tuple[Term, ...] = ()  # every amount above, one line each (CUDA's per-GPU ones)
    # gpu_per_device on each GPU backend (backends.toml): its context plus the
    # framework's reserves for that backend. gpu_per_device itself is CUDA's.
    by_backend: tuple[tuple[str, int], ...] = ()


def gpu_reserve(framework: Framework, backend: str) -> int:
    """The framework's documented per-GPU reserves that apply on ``backend``."""
    return sum(
        o.amount_bytes
        for o in framework.overheads
        if o.device == "gpu" and o.per == "device" and (not o.backends or backend in o.backends)
    )


def _reserves(framework: Framework) -> tuple[list[Term], list[Term]]:
    """Documented per-GPU reserves (those that apply on CUDA), and the RAM its CPU
    backend reserves. A ``device = "cpu"`` overhead is a cost of running on the CPU
    backend (vLLM's VLLM_CPU_KVCACHE_SPACE), not of every process.
    """
    gpu = [
        Term("gpu-device", o.amount_bytes, f"{o.what}: {o.amount} per GPU ({framework.name})")
        for o in framework.overheads
        if o.device == "gpu" and o.per == "device" and (not o.backends or "cuda" in o.backends)
    ]
    cpu = [
        Term("cpu-backend", o.amount_bytes, f"{o.what}: {o.amount} ({framework.name})")
        for o in framework.overheads
        if o.device == "cpu"
    ]
    return gpu, cpu


def llamacpp_compute_buffer(arch: Arch, context: int, sequences: int, flash: bool) -> int:
    """llama.cpp's compute buffer reservation for one device.

    The graph allocator reuses memory, so the reservation is the largest live
    set of one of three phases, each proportional to the physical batch
    (n_ubatch): attention (the f32 score matrix over n_ctx x (heads + 1) when
    flash attention is off, or an f16 mask of n_ctx when it is on), the FFN, and
    the f32 logits over the vocabulary. Fitted to 122 buffers llama.cpp reported
    for five architectures, contexts of 512-32,768 tokens, n_ubatch 128-2,048,
    flash attention on and off (tests/reference/llamacpp-measured.toml): median
    error under 1 %, worst 8.5 % (9 MiB) low, at 512 tokens.
    """
    ub = LLAMA_CPP_UBATCH
    ctx = context * sequences
    kv_dim = arch.kv_heads * arch.effective_head_dim
    ffn = ub * 4 * (3 * arch.intermediate + 4 * arch.hidden)
    logits = ub * arch.vocab * 4 + ub * arch.hidden * 8
    if flash:
        attention = ub * ctx * 2 + ffn
    else:
        attention = ub * ctx * (arch.heads + 1) * 4 + ub * 4 * (5 * arch.hidden + 2 * kv_dim)
    return max(attention, logits, ffn) + arch.vocab * 4 * sequences  # + the output buffer


def _torch_llm_activations(arch: Arch, tokens: int, seqs: int) -> int:
    # Prefill of `tokens` tokens in 16-bit: hidden states, q/k/v, the gated FFN
    # intermediate; plus f32 logits of the sampled positions. Estimate.
    per_token = (arch.hidden * 4 + arch.intermediate * 3) * 2
    return tokens * per_token + seqs * arch.vocab * 4


def _on(line: str, device: str) -> str:
    """ "compute buffer: 308 MiB ..." -> "compute buffer on the GPU: 308 MiB ..." """
    label, _, rest = line.partition(": ")
    return f"{label} on the {device}: {rest}"


def uses_ggml(framework: Framework, precision_family: str) -> bool:
    """llama.cpp-style runtime: GGML frameworks running GGML precisions.

    Text Generation WebUI runs GGUF files through llama.cpp but 16-bit and
    GPTQ/AWQ weights through Transformers, so the precision decides.
    """
    return framework.id in GGML_FRAMEWORKS and precision_family == "ggml"


def _overheads(
    framework: Framework,
    ggml: bool,
    gpu_work: list[Term],
    cpu_work: list[Term],
    backends: tuple[Backend, ...] = (),
) -> Overheads:
    """The runtime's fixed costs (CUDA context, documented reserves, the process in
    RAM, its share of each GPU) around the workload-dependent terms."""
    reserves, backend = _reserves(framework)
    if ggml:
        context, process = GGML_CUDA_CONTEXT, GGML_PROCESS_RAM
        context_line = (
            f"GPU runtime context: {format_bytes(context)} per GPU (llama.cpp on CUDA, an "
            "estimate, also used for ROCm, Metal, SYCL and Vulkan: backends.toml)"
        )
        process_line = f"the process itself in RAM: {format_bytes(process)} (llama.cpp, measured)"
    else:
        context, process = TORCH_CUDA_CONTEXT, TORCH_PROCESS_RAM
        context_line = (
            f"GPU runtime context: {format_bytes(context)} per GPU (PyTorch on CUDA, measured: "
            f"{TORCH_CUDA_CONTEXT_SOURCE}; the same figure planned for ROCm, MPS and XPU)"
        )
        process_line = f"the process itself in RAM: {format_bytes(process)} (PyTorch, estimate)"
    fraction = framework.gpu_memory_fraction or 1.0
    notes = []
    if fraction < 1:
        notes.append(f"{framework.name} uses at most {fraction:.0%} of each GPU's memory")
    by_backend = tuple(
        (
            b.id,
            (b.ggml_context_bytes if ggml else b.torch_context_bytes)
            + gpu_reserve(framework, b.id),
        )
        for b in backends
    )
    terms = (
        *reserves,
        Term("gpu-device", context, context_line),
        *gpu_work,
        *cpu_work,
        Term("process", process, process_line),
        *backend,
    )
    return Overheads(
        gpu_per_device=context + sum(t.bytes for t in reserves),
        gpu_compute=sum(t.bytes for t in gpu_work),
        cpu_compute=sum(t.bytes for t in cpu_work),
        cpu_process=process,
        gpu_fraction=fraction,
        lines=tuple(notes),
        cpu_backend=sum(t.bytes for t in backend),
        terms=terms,
        by_backend=by_backend,
    )


def llm_overheads(
    framework: Framework,
    arch: Arch,
    workload: Workload,
    precision_family: str,
    backends: tuple[Backend, ...] = (),
) -> Overheads:
    seqs = workload.sequences
    if uses_ggml(framework, precision_family):
        compute = llamacpp_compute_buffer(
            arch, workload.context_tokens, seqs, workload.flash_attention
        )
        # Without flash attention the CPU backend also keeps an f16 copy of the
        # attention scores outside the printed buffer: resident memory at a full
        # context was ~200 MiB above the buffers for a 1B model at 4k (measured).
        fa = "on" if workload.flash_attention else "off"
        line = (
            f"compute buffer: {format_bytes(compute)} (llama.cpp, n_ubatch "
            f"{LLAMA_CPP_UBATCH}, flash attention {fa}; calibrated on measured buffers)"
        )
        cpu = [Term("cpu-compute", compute, _on(line, "CPU"))]
        if not workload.flash_attention:
            scratch = LLAMA_CPP_UBATCH * workload.context_tokens * seqs * arch.heads * 2
            cpu.append(
                Term(
                    "cpu-compute",
                    scratch,
                    f"attention scratch on the CPU: {format_bytes(scratch)} (f16 scores "
                    "outside the compute buffer, flash attention off; measured)",
                )
            )
        gpu = [Term("gpu-compute", compute, _on(line, "GPU"))]
        return _overheads(framework, True, gpu, cpu, backends)
    if framework.id == "vllm":
        tokens, samplers = VLLM_BATCHED_TOKENS, VLLM_MAX_SEQS
    else:
        tokens, samplers = workload.context_tokens * seqs, seqs
    act = _torch_llm_activations(arch, tokens, samplers)
    line = f"activations: {format_bytes(act)} for a {tokens:,}-token prefill (estimate)"
    return _overheads(
        framework,
        False,
        [Term("gpu-compute", act, _on(line, "GPU"))],
        [Term("cpu-compute", act, _on(line, "CPU"))],
        backends,
    )


def other_overheads(
    framework: Framework,
    model: Model,
    variant: Variant,
    weights_bytes: int,
    workload: Workload,
    precision_family: str,
    backends: tuple[Backend, ...] = (),
) -> Overheads:
    """Non-decoder models: a runtime plus activations that scale with the input."""
    act, how = activations(model, variant, weights_bytes, workload)
    ggml = uses_ggml(framework, precision_family)
    line = f"activations: {format_bytes(act)}, {how}"
    return _overheads(
        framework,
        ggml,
        [Term("gpu-compute", act, _on(line, "GPU"))],
        [Term("cpu-compute", act, _on(line, "CPU"))],
        backends,
    )


# Diffusion: activations per image at the native resolution as a share of the
# weights in 16-bit (the SDXL VAE decodes in fp32 whatever the weights are, so
# activations do not follow the weights' precision). Calibrated on the published
# diffusers measurements in tests/reference/vision.toml: SD 1.5 at 512 px
# (1.07 GB over 2.13 GB of weights) and SDXL at 1024 px (3.7 GB per image over
# 6.9 GB) both give ~0.5; SD 3 Medium needs less (0.22), so this errs high there.
DIFFUSION_ACTIVATION_SHARE = 0.5
# sentence-transformers' SentenceTransformer.encode(batch_size=32) default.
EMBEDDING_BATCH = 32


def default_batch(kind: str) -> int:
    return EMBEDDING_BATCH if kind == "embedding" else 1


def activations(
    model: Model, variant: Variant, weights_bytes: int, workload: Workload
) -> tuple[int, str]:
    """Activation memory for the non-decoder kinds, with how it was derived."""
    batch = workload.batch or default_batch(model.kind)
    if model.kind == "diffusion":
        half = (variant.params.total if variant.params else weights_bytes // 2) * 2
        native = variant.output.resolution if variant.output else None
        side = workload.resolution or native
        scale = (side / native) ** 2 if native and side else 1.0
        act = round(half * DIFFUSION_ACTIVATION_SHARE * scale * batch)
        at = f" at {native} px, scaled to {side} px" if native and side else ""
        return act, (
            f"{DIFFUSION_ACTIVATION_SHARE:.0%} of the 16-bit weights per image{at}, batch "
            f"{batch} (estimate calibrated on published diffusers measurements)"
        )
    enc = variant.encoder
    if enc is not None:
        tokens = enc.max_tokens
        # One layer live at a time: f32 attention scores plus the MLP intermediate.
        scores = tokens * tokens * enc.heads * 4
        mlp = tokens * (enc.intermediate + 4 * enc.hidden) * 4
        act = (scores + mlp) * batch
        return act, f"{tokens} tokens x batch {batch}: attention scores + MLP, one layer (estimate)"
    act = round(weights_bytes * 0.2)
    return act, "20% of the weights (no architecture numbers; estimate)"
