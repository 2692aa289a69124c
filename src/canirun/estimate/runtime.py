"""What a serving framework adds on top of the weights and KV cache.

Each constant says where it comes from; the ones no primary source publishes
are labelled estimates. Framework-level facts (Ollama's per-GPU reserve,
ComfyUI's reserve, vLLM's share of VRAM) come from the catalog's
``frameworks.toml``; what depends on the model and the workload (compute
buffers, activations) is computed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from canirun.catalog.schema import (
    Arch,
    Backend,
    Denoiser,
    Encoder,
    Framework,
    ImageInput,
    Model,
    Variant,
)
from canirun.estimate.memo import ByIdentity
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
# A llama.cpp LLM process besides its printed buffers, measured with the context filled
# (tests/reference/llamacpp-measured.toml, [[peak_rss]]): 43 MiB is `import llama_cpp` with the
# backend initialised ([[baseline_rss]]); the vocabulary (token strings, scores, the
# token-to-id map, the piece cache) adds about 140 bytes a token (128k-256k vocabularies
# measured); loading leaves about 0.5 MiB of allocator slack a layer (2- and 16-layer files;
# repacked weights leave more: see _llamacpp_overheads). The
# base (43 MiB + 6) is rounded up over the allocator noise: loads of one file at other contexts
# left up to ~6 MiB more or less besides their printed buffers.
LLAMACPP_PROCESS_BASE = 49 * MIB
LLAMACPP_PROCESS_PER_TOKEN = 140
LLAMACPP_PROCESS_PER_LAYER = MIB // 2
# Per cell of the context: llama.cpp's KV cell metadata (llama-kv-cells.h: pos and shift, an
# int32 each, and a std::bitset<LLAMA_MAX_SEQ> of sequences, filled at load; one std::map node
# in seq_pos for each cell used), llama-cpp-python's int32 input_ids, and the prompt itself as
# Python ints. Fitted: filling 8k -> 32k left 145-166 bytes a cell beyond the other terms
# (Llama 3.2 1B and Qwen1.5-0.5B widths, flash attention on); rounded up.
LLAMACPP_PROCESS_PER_CELL = 160
# llama-cpp-python's llama_batch: llama_batch_init(n_batch, 0, n_ctx) mallocs an n_ctx-long
# seq_id array for each of n_batch tokens, and the allocator writes one page of each.
LLAMACPP_BATCH = 2048
PAGE = 4096
# Without flash attention: intermediate-wide FFN tensors that reach beyond the other tensors
# of a layer where the attention scores are small (see _fragmented_attention_ffn; fitted).
LLAMACPP_FFN_FRAGMENTED = 2.9
# GGUF types whose weights llama.cpp's CPU backend repacks at load on x86 (ggml-cpu/repack.cpp).
REPACKED_PREFIXES = ("Q4_0", "Q4_K", "IQ4_NL")

GGML_FRAMEWORKS = frozenset({"llama.cpp", "ollama", "text-generation-webui", "whisper.cpp"})

# llama.cpp's default physical batch (n_ubatch), which sizes its compute buffers.
LLAMA_CPP_UBATCH = 512
# vLLM's profile run: max_num_batched_tokens for chunked prefill and max_num_seqs.
VLLM_BATCHED_TOKENS = 8192
VLLM_MAX_SEQS = 256


# Where a cost is paid, so a breakdown lists exactly what its total counts:
# "gpu-device" on every GPU used, "gpu-compute" on the GPU doing the work,
# "cpu-compute" when the CPU does it, "process" in RAM always, "cpu-backend" in
# RAM only when the model runs on the CPU (vLLM's CPU KV cache space), "cpu-pinned" in RAM
# only when a GPU takes part (GPU + RAM): llama.cpp then puts the CPU's compute buffer in the
# first GPU's pinned host buffer type, all of its reservation resident (src/llama-context.cpp,
# "use the host buffer of the first device CPU"), not only the pages it writes.
Where = Literal["gpu-device", "gpu-compute", "cpu-compute", "process", "cpu-backend", "cpu-pinned"]


class Term:
    """An amount, where it is paid, and the line that says it and where it comes from.

    The line may be given as a function that writes it: it is then written the first time
    it is read. A scan works out the terms of every framework, precision and probed context,
    and reports the lines of one option per precision. Immutable, like the other records.
    """

    __slots__ = ("_text", "bytes", "where")
    where: Where
    bytes: int
    _text: str | Callable[[], str]

    def __init__(self, where: Where, bytes: int, text: str | Callable[[], str]) -> None:
        # Through the slots' own descriptors (a scan makes thousands of terms).
        _SET_WHERE(self, where)
        _SET_BYTES(self, bytes)
        _SET_TEXT(self, text)

    @property
    def text(self) -> str:
        text = self._text
        if not isinstance(text, str):
            text = text()
            _SET_TEXT(self, text)
        return text

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Term is immutable: cannot set {name}")

    def _key(self) -> tuple[str, int, str]:
        return self.where, self.bytes, self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Term) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Term(where={self.where!r}, bytes={self.bytes!r}, text={self.text!r})"


_SET_WHERE: Callable[[Term, object], None] = Term.__dict__["where"].__set__
_SET_BYTES: Callable[[Term, object], None] = Term.__dict__["bytes"].__set__
_SET_TEXT: Callable[[Term, object], None] = Term.__dict__["_text"].__set__


class Overheads(msgspec.Struct, frozen=True):
    gpu_per_device: int  # every GPU used: CUDA context and reserves kept free
    gpu_compute: int  # compute buffers / activations on the GPU doing the work
    cpu_compute: int  # the same when the CPU does the work
    cpu_process: int  # the process itself in RAM
    gpu_fraction: float  # share of a GPU's memory the runtime uses at most
    lines: tuple[str, ...]  # notes without an amount of their own (a runtime's cap)
    cpu_backend: int = 0  # reserved in RAM only when the model runs on the CPU
    cpu_pinned: int = 0  # in RAM besides cpu_compute when a GPU takes part (GPU + RAM)
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


def _llamacpp_phases(arch: Arch, ctx: int, flash: bool) -> tuple[int, int, int]:
    """The live sets of llama.cpp's three graph phases for one n_ubatch: attention, FFN,
    and the f32 logits of n_ubatch outputs (the worst batch the allocator reserves for)."""
    ub = LLAMA_CPP_UBATCH
    kv_dim = arch.kv_heads * arch.effective_head_dim
    ffn = ub * 4 * (3 * arch.intermediate + 4 * arch.hidden)
    logits = ub * arch.vocab * 4 + ub * arch.hidden * 8
    if flash:
        attention = ub * ctx * 2 + ffn
    else:
        attention = ub * ctx * (arch.heads + 1) * 4 + ub * 4 * (5 * arch.hidden + 2 * kv_dim)
    return attention, ffn, logits


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
    attention, ffn, logits = _llamacpp_phases(arch, context * sequences, flash)
    return max(attention, logits, ffn) + arch.vocab * 4 * sequences  # + the output buffer


def _fragmented_attention_ffn(arch: Arch, ctx: int) -> int:
    """Without flash attention, the pages the attention and FFN of one layer reach together.

    ggml-alloc frees the f32 score matrix (ub x n_ctx x heads) after the product with V and
    places the FFN's intermediate-wide tensors (gate, up, their product) in that hole only as
    far as they fit; the rest go beyond the layer's other tensors. Where the scores are no
    larger than the FFN (few heads, short contexts: Gemma-2-2B widths at 2k wrote 20 MiB past
    both phases) the extent is about the other tensors + 2.9 intermediate-wide tensors (fitted,
    and kept monotonic in n_ctx rather than following the allocator's saw-tooth).
    """
    ub = LLAMA_CPP_UBATCH
    kv_dim = arch.kv_heads * arch.effective_head_dim
    others = ub * 4 * (5 * arch.hidden + 2 * kv_dim) + ub * ctx * 4  # + the f32 mask
    scores = ub * ctx * arch.heads * 4
    wide = ub * arch.intermediate * 4
    return others + max(scores, round(LLAMACPP_FFN_FRAGMENTED * wide))


def llamacpp_cpu_resident(arch: Arch, context: int, sequences: int, flash: bool) -> tuple[int, int]:
    """What of the compute buffer a filled context really writes on the CPU, and the CPU
    backend's work buffer: (compute as touched, work buffer).

    The reservation is malloc'd, so on the CPU only the pages a graph writes become
    resident (on a GPU the whole reservation is allocated: see llamacpp_compute_buffer).
    Generating asks for the logits of one position per sequence (llama_batch.logits), so the
    n_ubatch x vocabulary logits block the allocator reserves for is never written; a filled
    context does write the whole attention phase (the last ubatch attends over all n_ctx
    cells) and the FFN. The work buffer (ggml-cpu.c, ggml_graph_plan; kept between graphs)
    holds each matrix product's activations converted to the weights' dot type: without flash
    attention the largest is the softmaxed scores (n_ubatch x n_ctx x heads) made f16 for the
    product with the f16 V cache; with it, the FFN input, at most 2 bytes (f16) a value.
    Held to peak resident memory measured with the context filled
    (tests/reference/llamacpp-measured.toml, [[peak_rss]]).
    """
    ub, ctx = LLAMA_CPP_UBATCH, context * sequences
    attention, _, _ = _llamacpp_phases(arch, ctx, flash)
    # The FFN as it runs: gate, up and their fused SwiGLU product (3 x intermediate) beside
    # about three hidden-wide tensors (the residual, its norm, the output), f32; the
    # reservation's fit above allows four hidden-wide ones.
    ffn = ub * 4 * (3 * arch.intermediate + 3 * arch.hidden)
    if flash:
        # The mask, ub x n_ctx: llama.cpp writes it in f32 (llm_graph_input_attn_kv) and casts
        # it to f16 for ggml_flash_attn_ext; the f16 copy is live through every layer beside the
        # FFN. (Counting the f32 input as well was 20 MiB high at 8k: it is not live then.)
        attention = ub * ctx * 2 + ffn
    if not flash:
        attention = max(attention, _fragmented_attention_ffn(arch, ctx))
    touched = max(attention, ffn) + arch.vocab * 4 * sequences  # + the output buffer
    work = ub * max(arch.intermediate, arch.hidden) * 2
    if not flash:
        work = max(work, ub * ctx * arch.heads * 2)
    return touched, work


def llamacpp_process_ram(arch: Arch) -> int:
    """The llama.cpp process in RAM besides its printed buffers: the runtime and Python
    binding, the vocabulary, and allocator slack left from loading."""
    return (
        LLAMACPP_PROCESS_BASE
        + arch.vocab * LLAMACPP_PROCESS_PER_TOKEN
        + arch.layers * LLAMACPP_PROCESS_PER_LAYER
    )


def _llamacpp_overheads(
    framework: Framework,
    arch: Arch,
    workload: Workload,
    backends: tuple[Backend, ...],
    precision: str = "",
) -> Overheads:
    """llama.cpp's terms: on a GPU the whole compute reservation; on the CPU what a filled
    context writes of it, the work buffer, and the process (issue 17)."""
    gpu, cpu, _, _ = core = _llamacpp_core(arch, workload)
    key = (id(arch), id(core), precision)
    hit = _PROCESS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        process_term = hit[1]
    else:
        process_term = _PROCESS.keep(key, (arch, core), _llamacpp_process(arch, core, precision))
    return _overheads(framework, True, gpu, cpu, backends, process_term)


# The GPU and CPU compute terms, llama-cpp-python's batch and the per-cell state: the same
# for every GGML framework (llama.cpp, Ollama, Text Generation WebUI) and file type.
_LlamacppCore = tuple[tuple[Term, ...], tuple[Term, ...], int, int]
_CORE: ByIdentity[_LlamacppCore] = ByIdentity()
_PROCESS: ByIdentity[Term] = ByIdentity()


def _llamacpp_core(arch: Arch, workload: Workload) -> _LlamacppCore:
    key = (id(arch), id(workload))
    hit = _CORE.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _CORE.keep(key, (arch, workload), _llamacpp_core_of(arch, workload))


def _llamacpp_core_of(arch: Arch, workload: Workload) -> _LlamacppCore:
    seqs, ctx, flash = workload.sequences, workload.context_tokens, llamacpp_flash(workload)
    reserved = llamacpp_compute_buffer(arch, ctx, seqs, flash)
    touched, work = llamacpp_cpu_resident(arch, ctx, seqs, flash)
    batch = min(ctx, LLAMACPP_BATCH) * min(ctx * 4, PAGE)
    cells = ctx * seqs * LLAMACPP_PROCESS_PER_CELL
    fa = "on" if flash else "off"

    def line() -> str:
        return (
            f"compute buffer: {format_bytes(reserved)} reserved (llama.cpp, n_ubatch "
            f"{LLAMA_CPP_UBATCH}, flash attention {fa}; calibrated on measured buffers)"
        )

    def written() -> str:
        unwritten = (
            f"; the rest of the {format_bytes(reserved)} reservation (the n_ubatch-wide logits "
            "block: generation asks for one position's logits) is never written"
            if reserved > touched
            else ""
        )
        return (
            f"compute buffer on the CPU: {format_bytes(touched)} written at a full context"
            f"{unwritten} (llama.cpp, n_ubatch {LLAMA_CPP_UBATCH}, flash attention {fa}; "
            "measured)"
        )

    cpu = [
        Term("cpu-compute", touched, written),
        Term(
            "cpu-compute",
            work,
            lambda: (
                f"CPU backend work buffer: {format_bytes(work)} (activations converted for each "
                "matrix product" + ("" if flash else ", the f16 attention scores") + ")"
            ),
        ),
    ]
    if reserved > touched:
        cpu.append(
            Term(
                "cpu-pinned",
                reserved - touched,
                lambda: (
                    "the unwritten rest of the CPU compute buffer, resident as pinned memory "
                    f"when a GPU takes part: {format_bytes(reserved - touched)}"
                ),
            )
        )
    gpu = (Term("gpu-compute", reserved, lambda: _on(line(), "GPU")),)
    return gpu, tuple(cpu), batch, cells


def _llamacpp_process(arch: Arch, core: _LlamacppCore, precision: str) -> Term:
    # Weights the CPU backend repacks (Q4_0, Q4_K on x86) are read through a staging buffer the
    # size of a tensor, and the heap keeps up to the largest (an FFN matrix at Q4_K, 144 bytes
    # per 256 weights) resident after loading: Q4_K_M files left 5-9 MiB more than Q8_0 at
    # Llama 3.2 1B widths and 15-29 MiB more at Llama 3 8B widths, more at longer contexts.
    _, _, batch, cells = core
    repack = 0
    if precision.upper().startswith(REPACKED_PREFIXES):
        repack = arch.intermediate * arch.hidden * 144 // 256
    process = llamacpp_process_ram(arch) + batch + repack + cells
    return Term(
        "process",
        process,
        lambda: (
            f"the process itself in RAM: {format_bytes(process)} (llama.cpp: runtime, bindings, "
            f"a {arch.vocab:,}-token vocabulary, {format_bytes(batch)} of llama-cpp-python's "
            f"batch, {format_bytes(cells)} of per-cell context state"
            + (
                f", {format_bytes(repack)} left from repacking {precision} at load"
                if repack
                else ""
            )
            + "; measured)"
        ),
    )


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


def _fixed_terms(framework: Framework, ggml: bool, backends: tuple[Backend, ...]) -> _FixedTerms:
    """The framework's reserves and its per-backend GPU costs: the same for every model,
    so worked out once per (framework, runtime kind, backends)."""
    key = (id(framework), id(backends), ggml)
    hit = _FIXED.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        return hit[1]
    return _FIXED.keep(key, (framework, backends), _fixed_terms_of(framework, ggml, backends))


class _FixedTerms(msgspec.Struct, frozen=True):
    reserves: tuple[Term, ...]  # documented per-GPU reserves on CUDA
    backend: tuple[Term, ...]  # what its CPU backend reserves in RAM
    by_backend: tuple[tuple[str, int], ...]
    per_device: int  # the CUDA context and the reserves
    cpu_backend: int
    fraction: float  # the share of each GPU it uses at most
    notes: tuple[str, ...]


def _fixed_terms_of(framework: Framework, ggml: bool, backends: tuple[Backend, ...]) -> _FixedTerms:
    reserves, backend = _reserves(framework)
    by_backend = tuple(
        (
            b.id,
            (b.ggml_context_bytes if ggml else b.torch_context_bytes)
            + gpu_reserve(framework, b.id),
        )
        for b in backends
    )
    fraction = framework.gpu_memory_fraction or 1.0
    notes = []
    if fraction < 1:
        notes.append(f"{framework.name} uses at most {fraction:.0%} of each GPU's memory")
    return _FixedTerms(
        tuple(reserves),
        tuple(backend),
        by_backend,
        _RUNTIME_TERMS[ggml][0].bytes + sum(t.bytes for t in reserves),
        sum(t.bytes for t in backend),
        fraction,
        tuple(notes),
    )


_FIXED: ByIdentity[_FixedTerms] = ByIdentity(1024)


# The runtime's CUDA context and its process in RAM: constants, so their lines are written
# once (ggml runtime: True; PyTorch: False).
_RUNTIME_TERMS: dict[bool, tuple[Term, Term]] = {
    True: (
        Term(
            "gpu-device",
            GGML_CUDA_CONTEXT,
            f"GPU runtime context: {format_bytes(GGML_CUDA_CONTEXT)} per GPU (llama.cpp on "
            "CUDA, an estimate, also used for ROCm, Metal, SYCL and Vulkan: backends.toml)",
        ),
        Term(
            "process",
            GGML_PROCESS_RAM,
            f"the process itself in RAM: {format_bytes(GGML_PROCESS_RAM)} (llama.cpp, measured)",
        ),
    ),
    False: (
        Term(
            "gpu-device",
            TORCH_CUDA_CONTEXT,
            f"GPU runtime context: {format_bytes(TORCH_CUDA_CONTEXT)} per GPU (PyTorch on CUDA, "
            f"measured: {TORCH_CUDA_CONTEXT_SOURCE}; the same figure planned for ROCm, MPS and "
            "XPU)",
        ),
        Term(
            "process",
            TORCH_PROCESS_RAM,
            f"the process itself in RAM: {format_bytes(TORCH_PROCESS_RAM)} (PyTorch, estimate)",
        ),
    ),
}


def _overheads(
    framework: Framework,
    ggml: bool,
    gpu_work: Sequence[Term],
    cpu_work: Sequence[Term],
    backends: tuple[Backend, ...] = (),
    process_term: Term | None = None,
) -> Overheads:
    """The runtime's fixed costs (CUDA context, documented reserves, the process in
    RAM, its share of each GPU) around the workload-dependent terms."""
    fixed = _fixed_terms(framework, ggml, backends)
    context, default_process = _RUNTIME_TERMS[ggml]
    process = default_process if process_term is None else process_term
    cpu_compute = cpu_pinned = 0
    for t in cpu_work:
        if t.where == "cpu-compute":
            cpu_compute += t.bytes
        elif t.where == "cpu-pinned":
            cpu_pinned += t.bytes
    return Overheads(
        gpu_per_device=fixed.per_device,
        gpu_compute=sum(t.bytes for t in gpu_work),
        cpu_compute=cpu_compute,
        cpu_pinned=cpu_pinned,
        cpu_process=process.bytes,
        gpu_fraction=fixed.fraction,
        lines=fixed.notes,
        cpu_backend=fixed.cpu_backend,
        terms=(*fixed.reserves, context, *gpu_work, *cpu_work, process, *fixed.backend),
        by_backend=fixed.by_backend,
    )


def fixed_overheads(framework: Framework, precision_family: str) -> Overheads:
    """The runtime's costs that do not depend on the model (no compute buffers):
    a floor for a model whose KV cache and buffers are unknown."""
    return _overheads(framework, uses_ggml(framework, precision_family), [], [])


# llama.cpp's `-fa auto` default (PR #15434, 2025-08; rules/runtime-defaults.toml)
# resolves to on for the CUDA, Metal and CPU backends.
LLAMA_CPP_FLASH_DEFAULT = True


def llamacpp_flash(workload: Workload) -> bool:
    """Flash attention as llama.cpp will run it: the user's choice, else its default."""
    if workload.flash_attention is None:
        return LLAMA_CPP_FLASH_DEFAULT
    return workload.flash_attention


def llm_overheads(
    framework: Framework,
    arch: Arch,
    workload: Workload,
    precision_family: str,
    backends: tuple[Backend, ...] = (),
    precision: str = "",
) -> Overheads:
    # Not memoised here: the rating asks through need._decoder_parts, which keeps each
    # answer per variant, framework and precision kind (a second memo would only miss).
    repacked = precision if precision.upper().startswith(REPACKED_PREFIXES) else ""
    return _llm_overheads(framework, arch, workload, precision_family, backends, repacked)


def _llm_overheads(
    framework: Framework,
    arch: Arch,
    workload: Workload,
    precision_family: str,
    backends: tuple[Backend, ...],
    precision: str,
) -> Overheads:
    seqs = workload.sequences
    if uses_ggml(framework, precision_family):
        return _llamacpp_overheads(framework, arch, workload, backends, precision)
    if framework.id == "vllm":
        tokens, samplers = VLLM_BATCHED_TOKENS, VLLM_MAX_SEQS
    else:
        tokens, samplers = workload.context_tokens * seqs, seqs
    act = _torch_llm_activations(arch, tokens, samplers)

    def line() -> str:
        return f"activations: {format_bytes(act)} for a {tokens:,}-token prefill (estimate)"

    return _overheads(
        framework,
        False,
        [Term("gpu-compute", act, lambda: _on(line(), "GPU"))],
        [Term("cpu-compute", act, lambda: _on(line(), "CPU"))],
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
# Tokens per text an embedding estimate assumes when the model reads more than
# this (nomic-embed, bge-m3: 8,192): retrieval chunks are usually this long, and
# attention memory grows with the square of the length. --seq-len overrides it.
EMBEDDING_TOKENS = 512

# Diffusion transformers (FLUX, SD3/3.5): one block live at a time, with fused
# attention (PyTorch SDPA, the default of diffusers and ComfyUI) so no tokens x tokens
# score matrix: per token, the feed-forward intermediate twice and a dozen
# hidden-width tensors (the joint image and text streams, q/k/v, attention output,
# modulation), at 4 bytes each whatever the weights' precision, because 16-bit
# pipelines upcast norms, rotary embeddings and attention inputs to fp32: a bf16 FLUX
# block measured 0.90 GB at 1024 px, 87 % of the fp32 block's 1.03 GB
# (tests/reference/diffusion-measured.toml, CPU). FLUX.1-dev at 1024 px gives 1.13
# GB; on a GPU the diffusers benchmark measured its bf16 transformer 0.46 GiB above
# its 23.80 GB of weights (huggingface.co/datasets/diffusers/benchmarks).
DIT_BYTES_PER_ELEMENT = 4
# VAE decoding at full resolution: 4,608 bytes per output pixel (18 tensors of 128
# channels x 2 bytes), at any precision. Calibrated on SD3 Medium in diffusers: 18.765
# GB published for the whole pipeline in fp16 at 1024 px (huggingface.co/blog/sd3),
# read as GiB, less its 15.39 GB of weights, leaves 4.76 GB. A decode of the same
# 16-channel VAE measured 3,870-4,083 bytes per pixel in fp32 at 512 and 1024 px
# (tests/reference/diffusion-measured.toml), so the constant covers fp32 decodes
# (and VAEs upcast to fp32) too. Estimate.
VAE_BYTES_PER_PIXEL = 4608


def default_batch(kind: str) -> int:
    return EMBEDDING_BATCH if kind == "embedding" else 1


def activations(
    model: Model, variant: Variant, weights_bytes: int, workload: Workload
) -> tuple[int, str]:
    """Activation memory for the non-decoder kinds, with how it was derived."""
    batch = workload.batch or default_batch(model.kind)
    if model.kind == "diffusion" and variant.denoiser is not None:
        return _dit_pipeline(variant, variant.denoiser, workload, batch)
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
    if enc is not None and model.kind == "vision":
        per_element = vit_element_bytes(variant, weights_bytes)
        act = vit_activations(enc, batch, per_element)
        return act, (
            f"{enc.max_tokens:,} patches x batch {batch}: {VIT_SCORE_COPIES} attention-score "
            f"tensors ({enc.heads} heads) + MLP at {per_element} bytes, one layer (eager "
            "attention; estimate calibrated on published SAM peaks)"
        )
    if enc is not None:
        tokens, capped = enc.max_tokens, ""
        if model.kind == "embedding":
            tokens = min(enc.max_tokens, workload.seq_len or EMBEDDING_TOKENS)
            if tokens < enc.max_tokens:
                capped = f" (reads up to {enc.max_tokens:,}; --seq-len)"
        act = encoder_activations(enc, tokens, batch)
        return act, (
            f"{tokens} tokens{capped} x batch {batch}: attention scores + MLP, one layer (estimate)"
        )
    act = round(weights_bytes * 0.2)
    return act, "20% of the weights (no architecture numbers; estimate)"


# ViT image encoders (SAM, DINOv2) in PyTorch's eager attention (Meta's code, transformers'
# eager path): at the peak of a global-attention layer three tokens x tokens tensors per head
# are live. SAM adds its decomposed relative positions in two steps (scores + rel_h, then
# + rel_w) while the scores are still referenced; transformers' SamVisionAttention does the same
# and its float32 softmax of 16-bit scores is again 2 + 4 bytes a value. A plain ViT holds two
# (the scores and their scaled copy, then softmax's input and output), so this is one score
# tensor high there. Measured by the PyTorch team (segment-anything-fast,
# tests/reference/vision.toml): SAM ViT-H at 1024 px, 16 heads over 64x64 patches, peaked at
# 28,806 MiB for 8 images in fp32 and 14,424 MiB in bf16: 2,445 / 1,222 MiB of weights,
# 3 x 1 GiB / 3 x 0.5 GiB of scores per image, and about 220 / 115 MiB per image of everything
# else (the MLP and hidden-width terms below plan 400 / 200 MiB). The scores follow the
# activations' precision: fp32 runs keep them in fp32, 16-bit runs in 16 bits. Estimate.
VIT_SCORE_COPIES = 3


def vit_element_bytes(variant: Variant, weights_bytes: int) -> int:
    """Bytes per activation value: fp32 weights compute in fp32, everything else in 16 bits."""
    params = variant.params.total if variant.params else 0
    return 4 if params and weights_bytes / params > 3 else 2


def vit_activations(enc: Encoder, batch: int, per_element: int) -> int:
    """A ViT image encoder's peak activations: one global-attention layer live at a time
    (VIT_SCORE_COPIES score tensors) beside the MLP intermediate (twice, for gated MLPs) and a
    dozen hidden-width tensors, per image."""
    tokens = enc.max_tokens
    scores = VIT_SCORE_COPIES * tokens * tokens * enc.heads
    rest = tokens * (2 * enc.intermediate + 12 * enc.hidden)
    return (scores + rest) * per_element * batch


def encoder_activations(enc: Encoder, tokens: int, batch: int) -> int:
    """One encoder layer live at a time: f32 attention scores plus the MLP intermediate."""
    scores = tokens * tokens * enc.heads * 4
    mlp = tokens * (enc.intermediate + 4 * enc.hidden) * 4
    return (scores + mlp) * batch


def dit_tokens(d: Denoiser, side: int) -> int:
    return (side // d.pixels_per_token) ** 2 + d.text_tokens


def dit_activation_bytes(d: Denoiser, side: int, batch: int) -> int:
    per_token = (2 * d.intermediate + 12 * d.hidden) * DIT_BYTES_PER_ELEMENT
    return dit_tokens(d, side) * per_token * batch * d.guidance_batch


def vae_decode_bytes(side: int, batch: int) -> int:
    return side * side * VAE_BYTES_PER_PIXEL * batch


def diffusion_side(variant: Variant, workload: Workload) -> int:
    native = variant.output.resolution if variant.output else 1024
    return workload.resolution or native


def _dit_pipeline(variant: Variant, d: Denoiser, workload: Workload, batch: int) -> tuple[int, str]:
    """Peak activations of a DiT pipeline: the denoiser's or the VAE decode's, whichever is larger.

    The stages run one after another, so their activations never coexist.
    """
    side = diffusion_side(variant, workload)
    dit = dit_activation_bytes(d, side, batch)
    vae = vae_decode_bytes(side, batch)
    cfg = ", x2 for classifier-free guidance" if d.guidance_batch == 2 else ""
    return max(dit, vae), (
        f"{side} px, batch {batch}: denoiser {format_bytes(dit)} ({dit_tokens(d, side):,} tokens"
        f"{cfg}), VAE decode {format_bytes(vae)}; the larger counts (estimate)"
    )


def offload_peak(variant: Variant, bytes_per_param: float, workload: Workload) -> int | None:
    """GPU bytes of the largest stage when a runtime keeps one stage resident at a time.

    diffusers' enable_model_cpu_offload() and ComfyUI's smart memory (when the
    whole pipeline does not fit) run the text encoders, then the denoiser, then
    the VAE; each stage needs its own weights plus its own activations. The text
    encoders count as one stage: SD3 Medium's published offload peak (12.06 GB,
    huggingface.co/blog/sd3) is all three of them (11.16 GB), not T5 alone (9.52 GB).
    """
    d = variant.denoiser
    if d is None or not variant.components:
        return None
    side = diffusion_side(variant, workload)
    batch = workload.batch or 1
    stages: dict[str, int] = {}
    for i, c in enumerate(variant.components):
        stage = c.role or f"component {i}"
        stages[stage] = stages.get(stage, 0) + round(c.params * bytes_per_param)
    stages["denoiser"] = stages.get("denoiser", 0) + dit_activation_bytes(d, side, batch)
    stages["vae"] = stages.get("vae", 0) + vae_decode_bytes(side, batch)
    return max(stages.values())


def vision_activations(enc: Encoder, image: ImageInput) -> int:
    """The vision tower encoding one image: all its tiles' patches in one sequence.

    Without fused attention (transformers' eager path, llama.cpp without flash
    attention) a full-attention layer holds the f32 scores and their softmax at
    once, plus the gated MLP and a dozen hidden-width tensors: Qwen2.5-VL's tower
    on 5,476 patches peaked 4.19 GB above its weights in fp32 with eager attention
    (0.44 GB with SDPA; tests/reference/diffusion-measured.toml, CPU), against
    4.33 GB here. An upper bound for runtimes with fused attention.
    """
    tokens = enc.max_tokens * image.tiles
    scores = 2 * tokens * tokens * enc.heads * 4
    rest = tokens * (2 * enc.intermediate + 12 * enc.hidden) * 4
    return scores + rest


def cross_attention_kv(arch: Arch, image: ImageInput, bytes_per_element: float) -> int:
    """KV of the cross-attention layers: the image states, once per image (Llama 3.2 Vision)."""
    per_token = 2 * arch.kv_heads * arch.effective_head_dim
    return round(image.cross_attention_layers * image.cross_tokens * per_token * bytes_per_element)
