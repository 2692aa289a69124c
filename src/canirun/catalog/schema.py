"""The catalog's schema: what a model, framework and GPU entry may say.

Every model is a *family release* (``llama-3``) with one *variant* per published
size (``8b``, ``70b``). Every number lives in a small "figure" block that names
its ``source`` (a key of the model's ``sources`` table, or a URL) and says
whether it is an ``estimate``. ``extra="forbid"`` everywhere: a misspelt key is
an error, never silently ignored.

Published quantities keep the unit their source used ("4.92 GB", "24 GiB",
"1008 GB/s"); ``units.parse_size`` turns them into bytes when needed.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, model_validator

from canirun.units import parse_rate, parse_size

Category = Literal[
    "foundation", "industry", "code", "vision", "speech", "multimodal", "science", "embeddings"
]
# What the estimator does with an entry; one kind per memory model.
Kind = Literal[
    "llm",  # decoder-only transformer: weights + KV cache + runtime overhead
    "vlm",  # a decoder LLM plus a vision tower (components)
    "diffusion",  # UNet/DiT + text encoders + VAE, activations by resolution
    "speech",  # speech recognition / TTS models (Whisper, MMS)
    "vision",  # image encoders: SAM, DINOv2
    "embedding",  # sentence/text embedding encoders
    "protein",  # structure prediction (AlphaFold)
]
# open-weights: anyone may download (possibly after accepting a licence);
# on-request: weights are released to approved requesters under terms;
# api-only: usable only through a hosted API; unreleased: neither weights nor a
# general public API; retired: once offered (as an API) and now withdrawn
# everywhere, with the date in a `lifecycle` block.
Access = Literal["open-weights", "on-request", "api-only", "unreleased", "retired"]
Modality = Literal["text", "code", "image", "audio", "video", "protein", "embedding"]
Dtype = Literal["fp32", "fp16", "bf16", "fp8"]
FileFormat = Literal["gguf", "ggml", "safetensors", "pytorch", "ckpt", "onnx", "jax", "tensorflow"]
Os = Literal["linux", "darwin", "windows"]
CpuArch = Literal["x86_64", "arm64"]
Accelerator = Literal["nvidia", "amd", "apple", "intel", "cpu"]
MultiGpu = Literal["none", "layer-split", "tensor-parallel", "pipeline-parallel", "device-map"]


def _size(text: str) -> str:
    parse_size(text)  # raises ValueError with a readable message
    return text


def _rate(text: str) -> str:
    parse_rate(text)
    return text


def _iso_date(text: str) -> str:
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise ValueError(f"{text!r} is not a date such as '2025-09-24'")
    return text


def _cc(text: str) -> str:
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
    if not re.fullmatch(r"[0-9]{1,3}\.[0-9]{1,3}", text, re.ASCII):
        raise ValueError(f"{text!r} is not a compute capability such as '8.9'")
    return text


SizeText = Annotated[str, AfterValidator(_size)]
RateText = Annotated[str, AfterValidator(_rate)]
ComputeCapability = Annotated[str, AfterValidator(_cc)]
FullDate = Annotated[str, AfterValidator(_iso_date)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._+-]*$")]
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]
# Sane ranges: far above any published model (the largest today: 126 layers,
# hidden 16384, a 256k vocabulary, 10M tokens of context, 405B parameters),
# low enough that every estimate stays fast and exact. `layers = 1000000` is
# a typo, and refused as one.
Layers = Annotated[int, Field(gt=0, le=1024)]
Width = Annotated[int, Field(gt=0, le=2**20)]  # hidden, feed-forward width
Heads = Annotated[int, Field(gt=0, le=4096)]
Vocab = Annotated[int, Field(gt=0, le=2**22)]
Tokens = Annotated[int, Field(gt=0, le=2**27)]  # context, windows, sequence lengths
Experts = Annotated[int, Field(gt=0, le=4096)]
ParamCount = Annotated[int, Field(gt=0, le=10**14)]
Pixels = Annotated[int, Field(gt=0, le=2**16)]


class Strict(BaseModel):
    # defer_build: the shipped catalog arrives validated (loader.VALIDATED), so a run
    # builds the validators only when it validates a user's file (~55 ms at import).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Figure(Strict):
    """A block of numbers from one source."""

    source: str = Field(description="a key of the model's `sources` table, or a URL")
    estimate: bool = Field(False, description="true when the figure is not published")
    note: str | None = None


class Params(Figure):
    total: ParamCount
    active: ParamCount | None = Field(None, description="active per token (mixture-of-experts)")


class Arch(Figure):
    """Decoder-transformer numbers that memory and speed arithmetic need."""

    layers: Layers
    hidden: Width
    heads: Heads
    kv_heads: Heads
    head_dim: Heads | None = Field(None, description="defaults to hidden / heads")
    intermediate: Width = Field(description="feed-forward width (per expert for MoE)")
    vocab: Vocab
    max_context: Tokens
    ffn: Literal["gated", "plain"] = Field(
        "gated", description="gated = 3 matrices (SwiGLU/GeGLU); plain = 2 (GELU MLP)"
    )
    tied_embeddings: bool = False
    learned_positions: Tokens | None = Field(
        None, description="rows of a learned position-embedding table, if any"
    )
    experts: Experts | None = None
    experts_per_token: Experts | None = None
    sliding_window: Tokens | None = None
    local_layers: int = Field(
        0,
        ge=0,
        le=1024,
        description="layers whose KV cache is capped at sliding_window by the runtimes",
    )
    gguf_arch: str | None = Field(
        None, description="llama.cpp's architecture name (general.architecture), if it runs it"
    )
    gguf_output: bool | None = Field(
        None, description="GGUF stores output.weight apart from token_embd (default: untied)"
    )
    # -- issue 11: today's architectures (all optional, additive) --------------------------
    extended_context: Tokens | None = Field(
        None,
        description="context reachable with the rope scaling the model card documents "
        "(YaRN ...); used only when the user asks (--extended-context)",
    )
    extended_how: str | None = Field(None, description="how the extended context is reached")
    window_kind: Literal["sliding", "chunked"] = Field(
        "sliding",
        description="local layers see the last `sliding_window` tokens (sliding) or only their "
        "own chunk of that size (chunked: Llama 4)",
    )
    attention_sinks: bool = Field(
        False, description="a learned per-head sink logit (gpt-oss); no KV cost"
    )
    kv_lora_rank: Width | None = Field(
        None, description="MLA (DeepSeek-V2/V3): width of the compressed KV latent"
    )
    q_lora_rank: Width | None = Field(None, description="MLA: width of the query latent")
    qk_rope_head_dim: Heads | None = Field(
        None, description="MLA: decoupled rotary key width, shared by all heads"
    )
    v_head_dim: Heads | None = Field(
        None, description="MLA: value width per head (head_dim is the query/key width)"
    )
    shared_experts: int = Field(
        0, ge=0, le=4096, description="experts every token uses besides the routed ones"
    )
    shared_intermediate: Width | None = Field(
        None, description="FFN width of one shared expert (default: intermediate)"
    )
    dense_layers: int = Field(
        0, ge=0, le=1024, description="MoE models: layers with a dense FFN instead of experts"
    )
    dense_intermediate: Width | None = Field(
        None, description="FFN width of the dense layers of a MoE model"
    )
    experts_mxfp4: bool = Field(
        False, description="routed experts are published in MXFP4 (gpt-oss); the rest 16-bit"
    )

    @property
    def effective_head_dim(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.experts else 0

    @model_validator(mode="after")
    def _consistent(self) -> Arch:
        if self.kv_heads > self.heads:
            raise ValueError("kv_heads cannot exceed heads")
        if (self.experts is None) != (self.experts_per_token is None):
            raise ValueError("experts and experts_per_token go together")
        if self.local_layers > self.layers:
            raise ValueError("local_layers cannot exceed layers")
        if self.local_layers and self.sliding_window is None:
            raise ValueError("local_layers needs sliding_window")
        if self.dense_layers > self.layers or (self.dense_layers and not self.experts):
            raise ValueError("dense_layers needs experts and cannot exceed layers")
        if self.shared_experts and not self.experts:
            raise ValueError("shared_experts needs experts")
        mla = (self.kv_lora_rank, self.qk_rope_head_dim, self.v_head_dim)
        if any(x is not None for x in mla) and any(x is None for x in mla):
            raise ValueError("MLA needs kv_lora_rank, qk_rope_head_dim and v_head_dim together")
        if self.extended_context is not None and self.extended_context <= self.max_context:
            raise ValueError("extended_context must exceed max_context (the native context)")
        return self


class Encoder(Figure):
    """Encoder-transformer numbers for activation estimates (embeddings, ViTs, audio)."""

    layers: Layers
    hidden: Width
    heads: Heads
    intermediate: Width
    max_tokens: Tokens = Field(description="max sequence length, or patches per image")
    image_size: Pixels | None = None
    patch_size: Pixels | None = None


# What a component does: diffusion pipelines run text encoders, then the
# denoiser, then the VAE, so a runtime that offloads keeps one stage resident.
ComponentRole = Literal["denoiser", "text-encoder", "vae", "vision-tower", "projector", "other"]


class Component(Figure):
    """A separately counted part: UNet, text encoder, VAE, vision tower, trunk."""

    name: str
    params: ParamCount
    role: ComponentRole | None = None


class FileSize(Figure):
    """A real, published file (or set of shards) at one precision."""

    format: FileFormat
    precision: str = Field(
        description="fp32, fp16, bf16, int8, int4, or a GGUF type such as Q4_K_M"
    )
    size: SizeText | None = Field(None, description="as published, e.g. '4.92 GB'")
    bytes: Annotated[int, Field(gt=0, le=2**50)] | None = Field(
        None, description="exact size in bytes, when published"
    )
    url: Url | None = None

    @model_validator(mode="after")
    def _has_size(self) -> FileSize:
        if (self.size is None) == (self.bytes is None):
            raise ValueError("give exactly one of size or bytes")
        return self

    @property
    def size_bytes(self) -> int:
        return self.bytes if self.bytes is not None else parse_size(self.size or "")


class Requirement(Figure):
    """A published requirement or measurement: VRAM, RAM or disk under stated conditions."""

    resource: Literal["vram", "ram", "disk"]
    amount: SizeText
    kind: Literal["minimum", "recommended", "measured"] = "minimum"
    framework: str | None = Field(None, description="framework id the figure applies to")
    precision: str | None = None
    condition: str | None = Field(None, description="free text: what was run, how")
    resolution: Pixels | None = Field(None, description="image side in pixels (diffusion)")
    seq_len: Tokens | None = Field(None, description="tokens or residues")
    batch: Pixels | None = None
    offload: bool = Field(False, description="measured with CPU offloading enabled")

    @property
    def amount_bytes(self) -> int:
        return parse_size(self.amount)


class Output(Figure):
    """What one run produces, where it matters for memory (diffusion: image side)."""

    resolution: Pixels = Field(description="native image side in pixels")


class Denoiser(Figure):
    """A diffusion transformer's shape: what its activations scale with (FLUX, SD3/3.5 MMDiT).

    One token per ``pixels_per_token`` x ``pixels_per_token`` image pixels (the
    VAE's downsampling times the transformer's patch size), plus the text tokens
    it attends to jointly.
    """

    layers: Layers
    hidden: Width
    heads: Heads
    intermediate: Width = Field(description="feed-forward width")
    pixels_per_token: Pixels = Field(description="VAE factor x patch size (16 for FLUX/SD3)")
    text_tokens: Tokens = Field(description="text tokens in the joint attention, as configured")
    guidance_batch: Literal[1, 2] = Field(
        1, description="2 when the default pipeline runs classifier-free guidance as a batch of 2"
    )


class ImageInput(Figure):
    """How a vision-language model takes one image, for the memory the image costs.

    ``tokens`` is what one image adds to the decoder's context at ``size`` px;
    models with cross-attention layers (Llama 3.2 Vision) instead keep the
    image's ``cross_tokens`` states in those layers' KV cache.
    """

    size: Pixels = Field(description="image side in pixels the figures assume")
    tokens: int = Field(ge=0, le=2**27, description="decoder context tokens one image takes")
    tiles: Annotated[int, Field(gt=0, le=64)] = Field(
        1, description="tiles the tower encodes per image"
    )
    cross_attention_layers: int = Field(
        0, ge=0, le=1024, description="decoder layers that attend to image states, not the text"
    )
    cross_tokens: int = Field(
        0, ge=0, le=2**27, description="image states those layers cache per image"
    )


class Lifecycle(Figure):
    """A dated status: a hosted model retired or deprecated, and what replaces it."""

    status: Literal["retired", "deprecated"]
    date: FullDate = Field(description="when it was (or will be) withdrawn")
    successor: str | None = Field(None, description="the replacement the vendor names")
    checked: FullDate | None = Field(None, description="when the status page was read")


class HardNeeds(Figure):
    """Hard requirements beyond memory: an entry that lacks them is `unsupported`."""

    gpu_vendor: list[Accelerator] = Field(default_factory=list)
    docker: bool = False
    os: list[Os] = Field(default_factory=list)


class ApiAccess(Figure):
    provider: str
    hosts: list[str] = Field(description="where it is served: vendor API, Azure, AWS Bedrock, ...")


# An Ollama model reference as `ollama pull` takes it: an optional namespace, the
# library name, and an explicit tag (`qwen2.5:7b`, `llama3.2:latest`). Tags keep
# Ollama's own spelling, upper-case quant letters included (`8b-instruct-q4_K_M`).
OllamaTag = Annotated[
    str,
    Field(pattern=r"^(?:[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*:[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}(?:-\d{2})?$")]


class OllamaTags(Figure):
    """Ollama library tags that pull this variant, as the library spelt them on `as_of`.

    Ollama can point a tag at another model later (`deepseek-r1:8b` moved from the
    Llama-8B to the Qwen3-8B distill), so the date is part of the fact, and
    `retargeted` says what a tag pointed at before and since when.
    """

    tags: list[OllamaTag] = Field(min_length=1)
    as_of: IsoDate = Field(description="when the library page was read: YYYY-MM-DD or YYYY-MM")
    retargeted: str | None = Field(
        None, description="what one of these tags pointed at before, and when it changed"
    )

    @model_validator(mode="after")
    def _unique(self) -> OllamaTags:
        if len(self.tags) != len(set(self.tags)):
            raise ValueError(f"duplicate Ollama tags in {self.tags}")
        return self


class Variant(Strict):
    key: Slug = Field(description="size or flavour, unique in the model: '8b', 'vit-h', 'large-v3'")
    name: str
    aliases: list[str] = Field(default_factory=list)
    hf_repo: str | None = None
    ollama: OllamaTags | None = Field(None, description="Ollama library tags for this variant")
    params: Params | None = None
    arch: Arch | None = None
    encoder: Encoder | None = None
    output: Output | None = None
    denoiser: Denoiser | None = None
    image: ImageInput | None = None
    lifecycle: Lifecycle | None = None
    components: list[Component] = Field(default_factory=list)
    files: list[FileSize] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_active_params(cls, data: object) -> object:
        """``active_params`` is derived and written out in JSON (`list --json`); reading
        such JSON back accepts it only when it agrees with ``params``."""
        if not isinstance(data, dict) or "active_params" not in data:
            return data
        data = dict(data)
        given = data.pop("active_params")
        params = data.get("params")
        if isinstance(params, Params):
            params = params.model_dump()
        derived = None
        if isinstance(params, dict):
            derived = params.get("active") or params.get("total")
        if given != derived:
            raise ValueError("active_params is derived from params (active, else total)")
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def active_params(self) -> int | None:
        """Parameters used per token: the routed share of a mixture of experts (speed),
        the total for a dense model; memory always follows ``params.total``."""
        if self.params is None:
            return None
        return self.params.active or self.params.total


class Model(Strict):
    id: Slug
    name: str
    family: Slug
    category: Category
    task: str
    kind: Kind
    access: Access
    access_note: str | None = Field(None, description="why it is not (only) open weights")
    license: str
    modalities: list[Modality]
    aliases: list[str] = Field(default_factory=list)
    frameworks: list[str] = Field(default_factory=list, description="framework ids")
    formats: list[FileFormat] = Field(default_factory=list)
    native_dtype: Dtype | None = None
    api: ApiAccess | None = None
    needs: HardNeeds | None = None
    lifecycle: Lifecycle | None = None
    sources: dict[str, Url] = Field(default_factory=dict)
    notes: str | None = None
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> Model:
        keys = [v.key for v in self.variants]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate variant keys in {keys}")
        for where, figure in self.figures():
            if not figure.source.startswith(("http://", "https://")) and (
                figure.source not in self.sources
            ):
                raise ValueError(f"{where}: source {figure.source!r} is not a key of `sources`")
        local = self.access in ("open-weights", "on-request")
        if local:
            for v in self.variants:
                if v.params is None:
                    raise ValueError(f"variant {v.key!r}: locally hostable models need params")
        elif self.access in ("api-only", "retired") and self.api is None:
            raise ValueError(
                f"{self.access} models need an `api` block (where it is or was served)"
            )
        if self.access == "retired" and (
            self.lifecycle is None or self.lifecycle.status != "retired"
        ):
            raise ValueError(
                "retired models need a `lifecycle` block with status 'retired' and a date"
            )
        if self.access != "open-weights" and not self.access_note:
            raise ValueError(f"access {self.access!r} needs an access_note saying why")
        return self

    def figures(self) -> list[tuple[str, Figure]]:
        """Every sourced block of this model, with a readable location."""
        out: list[tuple[str, Figure]] = []
        for name in ("api", "needs", "lifecycle"):
            block = getattr(self, name)
            if block is not None:
                out.append((name, block))
        for v in self.variants:
            here = f"variant {v.key!r}"
            names = ("ollama", "params", "arch", "encoder", "output", "denoiser", "image")
            for name in (*names, "lifecycle"):
                block = getattr(v, name)
                if block is not None:
                    out.append((f"{here} {name}", block))
            blocks: list[Figure] = [*v.components, *v.files, *v.requirements]
            out.extend((f"{here} {type(b).__name__.lower()}", b) for b in blocks)
        return out


class Detect(Strict):
    """How to tell that a framework is installed here."""

    commands: list[str] = Field(default_factory=list, description="executables on PATH")
    python: list[str] = Field(default_factory=list, description="Python distribution names")
    docker_images: list[str] = Field(default_factory=list)


class Overhead(Figure):
    """A documented runtime cost, e.g. the CUDA context or a reserve kept free."""

    what: str
    device: Literal["gpu", "cpu", "any"]
    amount: SizeText
    per: Literal["device", "process"] = "device"
    # GPU backends (backends.toml ids) this cost applies to; empty: all of them.
    backends: list[Slug] = Field(default_factory=list)

    @property
    def amount_bytes(self) -> int:
        return parse_size(self.amount)


class DefaultContext(Figure):
    """The context a runtime allocates when the user does not set one."""

    tokens: Tokens | None = Field(
        None, description="a fixed default (llama.cpp's n_ctx); None: the model's own"
    )
    model_max: bool = Field(
        False, description="the runtime defaults to the model's configured maximum (vLLM)"
    )
    by_vram: dict[SizeText, Tokens] = Field(
        default_factory=dict,
        description="tokens by the machine's total GPU memory: {at least this much = tokens}",
    )


class MultiNode(Strict):
    """Serving one model over several nodes: tensor parallel in a node, pipeline across."""

    pipeline_archs: list[str] = Field(
        description="architectures (llama.cpp's general.architecture names) whose model class "
        "supports pipeline parallelism"
    )
    source: str
    checked: str = Field(pattern=r"^\d{4}-\d\d-\d\d$", description="when the list was read")
    note: str | None = None


class Implements(Strict):
    """The architectures a framework implements itself (mlx-lm's models/ folder): a model
    with one of them runs on it whatever the model's own `frameworks` list says."""

    archs: dict[str, str] = Field(
        description="catalog architecture (llama.cpp's general.architecture name) -> the "
        "framework's module for it (mlx_lm/models/<module>.py)"
    )
    windowed: list[str] = Field(
        default_factory=list,
        description="archs whose cache keeps only the window on sliding/chunked layers; "
        "the others cache the whole context on every layer",
    )
    latent_kv: list[str] = Field(
        default_factory=list,
        description="MLA archs whose cache holds the compressed latent, not expanded K/V",
    )
    source: str
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the revision that was read")
    checked: str = Field(pattern=r"^\d{4}-\d\d-\d\d$", description="when the list was read")
    note: str | None = None

    @model_validator(mode="after")
    def _listed(self) -> Implements:
        for name in (*self.windowed, *self.latent_kv):
            if name not in self.archs:
                raise ValueError(f"{name!r} is not one of the implemented archs")
        return self


class Framework(Strict):
    id: Slug
    name: str
    kind: Literal["runtime", "server", "ui", "library", "pipeline", "hosted"]
    serves: list[Kind]
    aliases: list[str] = Field(default_factory=list)
    os: list[Os]
    arch: list[CpuArch]
    accelerators: list[Accelerator]
    min_compute_capability: ComputeCapability | None = None
    needs_docker: bool = False
    local: bool = Field(True, description="false for hosted services (inference endpoints)")
    formats: list[FileFormat] = Field(default_factory=list)
    precisions: list[str] = Field(default_factory=list)
    multi_gpu: MultiGpu = "none"
    cpu_only_ok: bool = Field(description="can run a model on the CPU alone")
    partial_offload: bool = Field(False, description="can split one model between GPU and RAM")
    gpu_memory_fraction: float | None = Field(
        None, gt=0, le=1, description="share of total VRAM the runtime claims (vLLM: 0.9)"
    )
    kv_cache_types: list[Literal["f16", "q8_0", "q4_0", "fp8"]] = Field(
        default_factory=list,
        description="KV cache types it can be told to use besides its default 16-bit "
        "(or the model's own dtype); empty: only the default",
    )
    kv_cache_source: str | None = Field(None, description="key of `sources` for kv_cache_types")
    overheads: list[Overhead] = Field(default_factory=list)
    default_context: DefaultContext | None = Field(
        None, description="the context a model gets when the user sets none"
    )
    multi_node: MultiNode | None = None
    implements: Implements | None = None
    detect: Detect = Field(default_factory=Detect)
    sources: dict[str, Url]
    source: str = Field(description="key of `sources` for the facts above")
    notes: str | None = None

    @model_validator(mode="after")
    def _sourced(self) -> Framework:
        nodes = [self.multi_node.source] if self.multi_node else []
        nodes += [self.implements.source] if self.implements else []
        refs = [self.source, *(o.source for o in self.overheads), *nodes]
        if self.default_context is not None:
            refs.append(self.default_context.source)
        if self.kv_cache_types and not self.kv_cache_source:
            raise ValueError("kv_cache_types needs a kv_cache_source")
        for ref in refs + ([self.kv_cache_source] if self.kv_cache_source else []):
            if not ref.startswith(("http://", "https://")) and ref not in self.sources:
                raise ValueError(f"source {ref!r} is not a key of `sources`")
        return self


class Gpu(Strict):
    id: Slug
    name: str
    vendor: Literal["nvidia", "amd", "apple", "intel"]
    aliases: list[str] = Field(default_factory=list)
    memory: SizeText = Field(description="capacity; vendors' 'GB' of DRAM is binary (GiB)")
    memory_type: str | None = None
    bandwidth: RateText
    compute_capability: ComputeCapability | None = None
    fp16_tflops: float | None = Field(
        None, gt=0, le=10**6, description="dense FP16 tensor throughput"
    )
    unified_memory: bool = False
    memory_options: list[SizeText] = Field(
        default_factory=list, description='other memory sizes sold (`--gpu "M3 Max 64GB"`)'
    )
    gfx_target: str | None = Field(None, pattern=r"^gfx[0-9a-f]+$", description="AMD LLVM target")
    source: Url
    note: str | None = None

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def memory_options_bytes(self) -> tuple[int, ...]:
        return tuple(parse_size(m) for m in (*self.memory_options, self.memory))

    @property
    def bandwidth_bytes_per_s(self) -> int:
        return parse_rate(self.bandwidth)


class BackendTargets(Strict):
    """The GPU architectures one framework's builds support on a backend."""

    framework: Slug
    targets: list[str] = Field(description="AMD gfx targets (gfx1100 ...) its builds ship for")
    source: Url


class Backend(Strict):
    """A GPU runtime (CUDA, ROCm, Metal, Vulkan, SYCL ...): which vendors' GPUs it
    drives, which frameworks use it, and what it costs per GPU."""

    id: Slug
    name: str
    vendors: list[Literal["nvidia", "amd", "apple", "intel"]]
    frameworks: list[Slug] = Field(description="framework ids that can run models on it")
    # A framework's builds may cover only some architectures (ROCm gfx targets).
    targets: list[BackendTargets] = Field(default_factory=list)
    unsupported_precisions: list[str] = Field(
        default_factory=list, description="precisions it has no kernels for (MPS: fp8, int8)"
    )
    ggml_context: SizeText = Field(description="per-GPU runtime context of a llama.cpp process")
    torch_context: SizeText = Field(description="per-GPU runtime context of a PyTorch process")
    context_estimate: bool = Field(description="true when the context sizes are not measured")
    source: Url
    note: str | None = None

    @property
    def ggml_context_bytes(self) -> int:
        return parse_size(self.ggml_context)

    @property
    def torch_context_bytes(self) -> int:
        return parse_size(self.torch_context)

    def targets_for(self, framework: str) -> list[str] | None:
        """The architectures `framework` supports here, or None when not restricted."""
        return next((t.targets for t in self.targets if t.framework == framework), None)


class CatalogFile(Strict):
    """One TOML file: any mix of [[model]], [[framework]] and [[gpu]] tables."""

    model: list[Model] = Field(default_factory=list)
    framework: list[Framework] = Field(default_factory=list)
    gpu: list[Gpu] = Field(default_factory=list)
    backend: list[Backend] = Field(default_factory=list)
