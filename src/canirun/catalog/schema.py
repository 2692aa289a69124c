"""The catalog's schema: what a model, framework and GPU entry may say.

Every model is a *family release* (``llama-3``) with one *variant* per published
size (``8b``, ``70b``). Every number lives in a small "figure" block that names
its ``source`` (a key of the model's ``sources`` table, or a URL) and says
whether it is an ``estimate``. ``extra="forbid"`` everywhere: a misspelt key is
an error, never silently ignored.

The records are frozen dataclasses, validated by pydantic where data comes in
(``constraints.validated``: the TOML files at compile time, the user's files, model
files); the shipped catalog arrives validated (loader.VALIDATED), so a command that
only reads it never imports pydantic. The annotations' constraint aliases and
``Field`` come from ``constraints``, which installs them here before validating.

Published quantities keep the unit their source used ("4.92 GB", "24 GiB",
"1008 GB/s"); ``units.parse_size`` turns them into bytes when needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from canirun.records import Record, record
from canirun.units import parse_rate, parse_size

if TYPE_CHECKING:
    from pydantic import Field
    from typing_extensions import dataclass_transform

    from canirun.catalog.constraints import (
        ComputeCapability,
        Experts,
        FullDate,
        Heads,
        IsoDate,
        Layers,
        OllamaTag,
        ParamCount,
        Pixels,
        RateText,
        SizeText,
        Slug,
        Tokens,
        Url,
        Vocab,
        Width,
    )
else:  # the 3.11 typing module takes frozen_default only as an unknown keyword
    from typing import dataclass_transform

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

C = TypeVar("C")


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def entry(cls: type[C]) -> type[C]:
    """A frozen, keyword-only record that pydantic validates with unknown keys refused;
    its docstring is its JSON Schema description, as for a pydantic model."""
    doc = cls.__dict__.get("__doc__")
    config: dict[str, Any] = {"extra": "forbid"}
    if doc:
        config["json_schema_extra"] = _describer(doc)
    cls.__pydantic_config__ = config  # type: ignore[attr-defined]
    return record(kw_only=True)(cls)


def _describer(doc: str) -> Callable[[dict[str, Any]], None]:
    """pydantic's ``json_schema_extra`` that sets the description from the docstring,
    cleaned only when a schema is built (inspect is not imported by a scan, issue 15)."""

    def describe(schema: dict[str, Any]) -> None:
        from inspect import cleandoc

        schema["description"] = cleandoc(doc)

    return describe


class Strict(Record):
    """The base of every catalog record (the pickled catalog may hold nothing else)."""


@entry
class Figure(Strict):
    """A block of numbers from one source."""

    source: Annotated[str, Field(description="a key of the model's `sources` table, or a URL")]
    estimate: Annotated[bool, Field(description="true when the figure is not published")] = False
    note: str | None = None


@entry
class Params(Figure):
    total: ParamCount
    active: Annotated[
        ParamCount | None, Field(description="active per token (mixture-of-experts)")
    ] = None


@entry
class Arch(Figure):
    """Decoder-transformer numbers that memory and speed arithmetic need."""

    layers: Layers
    hidden: Width
    heads: Heads
    kv_heads: Heads
    head_dim: Annotated[Heads | None, Field(description="defaults to hidden / heads")] = None
    intermediate: Annotated[Width, Field(description="feed-forward width (per expert for MoE)")]
    vocab: Vocab
    max_context: Tokens
    ffn: Annotated[
        Literal["gated", "plain"],
        Field(description="gated = 3 matrices (SwiGLU/GeGLU); plain = 2 (GELU MLP)"),
    ] = "gated"
    tied_embeddings: bool = False
    learned_positions: Annotated[
        Tokens | None, Field(description="rows of a learned position-embedding table, if any")
    ] = None
    experts: Experts | None = None
    experts_per_token: Experts | None = None
    sliding_window: Tokens | None = None
    local_layers: Annotated[
        int,
        Field(
            ge=0,
            le=1024,
            description="layers whose KV cache is capped at sliding_window by the runtimes",
        ),
    ] = 0
    gguf_arch: Annotated[
        str | None,
        Field(description="llama.cpp's architecture name (general.architecture), if it runs it"),
    ] = None
    gguf_output: Annotated[
        bool | None,
        Field(description="GGUF stores output.weight apart from token_embd (default: untied)"),
    ] = None
    # -- issue 11: today's architectures (all optional, additive) --------------------------
    extended_context: Annotated[
        Tokens | None,
        Field(
            description="context reachable with the rope scaling the model card documents "
            "(YaRN ...); used only when the user asks (--extended-context)"
        ),
    ] = None
    extended_how: Annotated[
        str | None, Field(description="how the extended context is reached")
    ] = None
    window_kind: Annotated[
        Literal["sliding", "chunked"],
        Field(
            description="local layers see the last `sliding_window` tokens (sliding) or only their "
            "own chunk of that size (chunked: Llama 4)"
        ),
    ] = "sliding"
    attention_sinks: Annotated[
        bool, Field(description="a learned per-head sink logit (gpt-oss); no KV cost")
    ] = False
    kv_lora_rank: Annotated[
        Width | None, Field(description="MLA (DeepSeek-V2/V3): width of the compressed KV latent")
    ] = None
    q_lora_rank: Annotated[Width | None, Field(description="MLA: width of the query latent")] = None
    qk_rope_head_dim: Annotated[
        Heads | None, Field(description="MLA: decoupled rotary key width, shared by all heads")
    ] = None
    v_head_dim: Annotated[
        Heads | None,
        Field(description="MLA: value width per head (head_dim is the query/key width)"),
    ] = None
    shared_experts: Annotated[
        int, Field(ge=0, le=4096, description="experts every token uses besides the routed ones")
    ] = 0
    shared_intermediate: Annotated[
        Width | None, Field(description="FFN width of one shared expert (default: intermediate)")
    ] = None
    dense_layers: Annotated[
        int,
        Field(ge=0, le=1024, description="MoE models: layers with a dense FFN instead of experts"),
    ] = 0
    dense_intermediate: Annotated[
        Width | None, Field(description="FFN width of the dense layers of a MoE model")
    ] = None
    experts_mxfp4: Annotated[
        bool, Field(description="routed experts are published in MXFP4 (gpt-oss); the rest 16-bit")
    ] = False

    @property
    def effective_head_dim(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.experts else 0

    def __post_init__(self) -> None:
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


@entry
class Encoder(Figure):
    """Encoder-transformer numbers for activation estimates (embeddings, ViTs, audio)."""

    layers: Layers
    hidden: Width
    heads: Heads
    intermediate: Width
    max_tokens: Annotated[Tokens, Field(description="max sequence length, or patches per image")]
    image_size: Pixels | None = None
    patch_size: Pixels | None = None


# What a component does: diffusion pipelines run text encoders, then the
# denoiser, then the VAE, so a runtime that offloads keeps one stage resident.
ComponentRole = Literal["denoiser", "text-encoder", "vae", "vision-tower", "projector", "other"]


@entry
class Component(Figure):
    """A separately counted part: UNet, text encoder, VAE, vision tower, trunk."""

    name: str
    params: ParamCount
    role: ComponentRole | None = None


@entry
class FileSize(Figure):
    """A real, published file (or set of shards) at one precision."""

    format: FileFormat
    precision: Annotated[
        str, Field(description="fp32, fp16, bf16, int8, int4, or a GGUF type such as Q4_K_M")
    ]
    size: Annotated[SizeText | None, Field(description="as published, e.g. '4.92 GB'")] = None
    bytes: Annotated[
        int | None, Field(gt=0, le=2**50, description="exact size in bytes, when published")
    ] = None
    url: Url | None = None

    def __post_init__(self) -> None:
        if (self.size is None) == (self.bytes is None):
            raise ValueError("give exactly one of size or bytes")

    @property
    def size_bytes(self) -> int:
        return self.bytes if self.bytes is not None else parse_size(self.size or "")


@entry
class Requirement(Figure):
    """A published requirement or measurement: VRAM, RAM or disk under stated conditions."""

    resource: Literal["vram", "ram", "disk"]
    amount: SizeText
    kind: Literal["minimum", "recommended", "measured"] = "minimum"
    framework: Annotated[str | None, Field(description="framework id the figure applies to")] = None
    precision: str | None = None
    condition: Annotated[str | None, Field(description="free text: what was run, how")] = None
    resolution: Annotated[Pixels | None, Field(description="image side in pixels (diffusion)")] = (
        None
    )
    seq_len: Annotated[Tokens | None, Field(description="tokens or residues")] = None
    batch: Pixels | None = None
    offload: Annotated[bool, Field(description="measured with CPU offloading enabled")] = False

    @property
    def amount_bytes(self) -> int:
        return parse_size(self.amount)


@entry
class Output(Figure):
    """What one run produces, where it matters for memory (diffusion: image side)."""

    resolution: Annotated[Pixels, Field(description="native image side in pixels")]


@entry
class Denoiser(Figure):
    """A diffusion transformer's shape: what its activations scale with (FLUX, SD3/3.5 MMDiT).

    One token per ``pixels_per_token`` x ``pixels_per_token`` image pixels (the
    VAE's downsampling times the transformer's patch size), plus the text tokens
    it attends to jointly.
    """

    layers: Layers
    hidden: Width
    heads: Heads
    intermediate: Annotated[Width, Field(description="feed-forward width")]
    pixels_per_token: Annotated[
        Pixels, Field(description="VAE factor x patch size (16 for FLUX/SD3)")
    ]
    text_tokens: Annotated[
        Tokens, Field(description="text tokens in the joint attention, as configured")
    ]
    guidance_batch: Annotated[
        Literal[1, 2],
        Field(
            description="2 when the default pipeline runs classifier-free guidance as a batch of 2"
        ),
    ] = 1


@entry
class ImageInput(Figure):
    """How a vision-language model takes one image, for the memory the image costs.

    ``tokens`` is what one image adds to the decoder's context at ``size`` px;
    models with cross-attention layers (Llama 3.2 Vision) instead keep the
    image's ``cross_tokens`` states in those layers' KV cache.
    """

    size: Annotated[Pixels, Field(description="image side in pixels the figures assume")]
    tokens: Annotated[
        int, Field(ge=0, le=2**27, description="decoder context tokens one image takes")
    ]
    tiles: Annotated[int, Field(gt=0, le=64, description="tiles the tower encodes per image")] = 1
    cross_attention_layers: Annotated[
        int,
        Field(
            ge=0, le=1024, description="decoder layers that attend to image states, not the text"
        ),
    ] = 0
    cross_tokens: Annotated[
        int, Field(ge=0, le=2**27, description="image states those layers cache per image")
    ] = 0


@entry
class Lifecycle(Figure):
    """A dated status: a hosted model retired or deprecated, and what replaces it."""

    status: Literal["retired", "deprecated"]
    date: Annotated[FullDate, Field(description="when it was (or will be) withdrawn")]
    successor: Annotated[str | None, Field(description="the replacement the vendor names")] = None
    checked: Annotated[FullDate | None, Field(description="when the status page was read")] = None


@entry
class HardNeeds(Figure):
    """Hard requirements beyond memory: an entry that lacks them is `unsupported`."""

    gpu_vendor: list[Accelerator] = field(default_factory=list)
    docker: bool = False
    os: list[Os] = field(default_factory=list)


@entry
class ApiAccess(Figure):
    provider: str
    hosts: Annotated[
        list[str], Field(description="where it is served: vendor API, Azure, AWS Bedrock, ...")
    ]


@entry
class OllamaTags(Figure):
    """Ollama library tags that pull this variant, as the library spelt them on `as_of`.

    Ollama can point a tag at another model later (`deepseek-r1:8b` moved from the
    Llama-8B to the Qwen3-8B distill), so the date is part of the fact, and
    `retargeted` says what a tag pointed at before and since when.
    """

    tags: Annotated[list[OllamaTag], Field(min_length=1)]
    as_of: Annotated[
        IsoDate, Field(description="when the library page was read: YYYY-MM-DD or YYYY-MM")
    ]
    retargeted: Annotated[
        str | None,
        Field(description="what one of these tags pointed at before, and when it changed"),
    ] = None

    def __post_init__(self) -> None:
        if len(self.tags) != len(set(self.tags)):
            raise ValueError(f"duplicate Ollama tags in {self.tags}")


@entry
class Variant(Strict):
    key: Annotated[
        Slug, Field(description="size or flavour, unique in the model: '8b', 'vit-h', 'large-v3'")
    ]
    name: str
    aliases: list[str] = field(default_factory=list)
    hf_repo: str | None = None
    ollama: Annotated[
        OllamaTags | None, Field(description="Ollama library tags for this variant")
    ] = None
    params: Params | None = None
    arch: Arch | None = None
    encoder: Encoder | None = None
    output: Output | None = None
    denoiser: Denoiser | None = None
    image: ImageInput | None = None
    lifecycle: Lifecycle | None = None
    components: list[Component] = field(default_factory=list)
    files: list[FileSize] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    notes: str | None = None

    # Derived (from params in __post_init__) and written out in JSON (`list --json`).
    active_params: Annotated[
        int | None,
        Field(
            description="Parameters used per token: the routed share of a mixture of experts "
            "(speed),\nthe total for a dense model; memory always follows ``params.total``."
        ),
    ] = field(init=False, default=None)

    def __post_init__(self) -> None:
        active = None if self.params is None else self.params.active or self.params.total
        object.__setattr__(self, "active_params", active)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """JSON that has ``active_params`` (`list --json`) reads back only when the figure
        agrees with ``params``."""
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(
            _derived_active_params, handler(source)
        )


def _derived_in_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema says what a pydantic computed field would: always written, read-only."""
    derived = schema["properties"]["active_params"]
    derived.pop("default", None)
    derived["readOnly"] = True
    schema.setdefault("required", []).append("active_params")


Variant.__pydantic_config__["json_schema_extra"] = _derived_in_schema  # type: ignore[attr-defined]


def _derived_active_params(data: object) -> object:
    if not isinstance(data, dict) or "active_params" not in data:
        return data
    data = dict(data)
    given = data.pop("active_params")
    params = data.get("params")
    if isinstance(params, Params):
        params = {"active": params.active, "total": params.total}
    derived = None
    if isinstance(params, dict):
        derived = params.get("active") or params.get("total")
    if given != derived:
        raise ValueError("active_params is derived from params (active, else total)")
    return data


@entry
class Model(Strict):
    id: Slug
    name: str
    family: Slug
    category: Category
    task: str
    kind: Kind
    access: Access
    access_note: Annotated[str | None, Field(description="why it is not (only) open weights")] = (
        None
    )
    license: str
    modalities: list[Modality]
    aliases: list[str] = field(default_factory=list)
    frameworks: Annotated[list[str], Field(description="framework ids")] = field(
        default_factory=list
    )
    formats: list[FileFormat] = field(default_factory=list)
    native_dtype: Dtype | None = None
    api: ApiAccess | None = None
    needs: HardNeeds | None = None
    lifecycle: Lifecycle | None = None
    sources: dict[str, Url] = field(default_factory=dict)
    notes: str | None = None
    variants: Annotated[list[Variant], Field(min_length=1)]

    def __post_init__(self) -> None:
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


@entry
class Detect(Strict):
    """How to tell that a framework is installed here."""

    commands: Annotated[list[str], Field(description="executables on PATH")] = field(
        default_factory=list
    )
    python: Annotated[list[str], Field(description="Python distribution names")] = field(
        default_factory=list
    )
    docker_images: list[str] = field(default_factory=list)


@entry
class Overhead(Figure):
    """A documented runtime cost, e.g. the CUDA context or a reserve kept free."""

    what: str
    device: Literal["gpu", "cpu", "any"]
    amount: SizeText
    per: Literal["device", "process"] = "device"
    # GPU backends (backends.toml ids) this cost applies to; empty: all of them.
    backends: list[Slug] = field(default_factory=list)

    @property
    def amount_bytes(self) -> int:
        return parse_size(self.amount)


@entry
class DefaultContext(Figure):
    """The context a runtime allocates when the user does not set one."""

    tokens: Annotated[
        Tokens | None,
        Field(description="a fixed default (llama.cpp's n_ctx); None: the model's own"),
    ] = None
    model_max: Annotated[
        bool, Field(description="the runtime defaults to the model's configured maximum (vLLM)")
    ] = False
    by_vram: Annotated[
        dict[SizeText, Tokens],
        Field(
            description="tokens by the machine's total GPU memory: {at least this much = tokens}"
        ),
    ] = field(default_factory=dict)


@entry
class MultiNode(Strict):
    """Serving one model over several nodes: tensor parallel in a node, pipeline across."""

    pipeline_archs: Annotated[
        list[str],
        Field(
            description="architectures (llama.cpp's general.architecture names) whose model class "
            "supports pipeline parallelism"
        ),
    ]
    source: str
    checked: Annotated[
        str, Field(pattern=r"^\d{4}-\d\d-\d\d$", description="when the list was read")
    ]
    note: str | None = None


@entry
class Implements(Strict):
    """The architectures a framework implements itself (mlx-lm's models/ folder): a model
    with one of them runs on it whatever the model's own `frameworks` list says."""

    archs: Annotated[
        dict[str, str],
        Field(
            description="catalog architecture (llama.cpp's general.architecture name) -> the "
            "framework's module for it (mlx_lm/models/<module>.py)"
        ),
    ]
    windowed: Annotated[
        list[str],
        Field(
            description="archs whose cache keeps only the window on sliding/chunked layers; "
            "the others cache the whole context on every layer"
        ),
    ] = field(default_factory=list)
    latent_kv: Annotated[
        list[str],
        Field(description="MLA archs whose cache holds the compressed latent, not expanded K/V"),
    ] = field(default_factory=list)
    source: str
    commit: Annotated[
        str, Field(pattern=r"^[0-9a-f]{40}$", description="the revision that was read")
    ]
    checked: Annotated[
        str, Field(pattern=r"^\d{4}-\d\d-\d\d$", description="when the list was read")
    ]
    note: str | None = None

    def __post_init__(self) -> None:
        for name in (*self.windowed, *self.latent_kv):
            if name not in self.archs:
                raise ValueError(f"{name!r} is not one of the implemented archs")


@entry
class Framework(Strict):
    id: Slug
    name: str
    kind: Literal["runtime", "server", "ui", "library", "pipeline", "hosted"]
    serves: list[Kind]
    aliases: list[str] = field(default_factory=list)
    os: list[Os]
    arch: list[CpuArch]
    accelerators: list[Accelerator]
    min_compute_capability: ComputeCapability | None = None
    needs_docker: bool = False
    local: Annotated[bool, Field(description="false for hosted services (inference endpoints)")] = (
        True
    )
    formats: list[FileFormat] = field(default_factory=list)
    precisions: list[str] = field(default_factory=list)
    multi_gpu: MultiGpu = "none"
    cpu_only_ok: Annotated[bool, Field(description="can run a model on the CPU alone")]
    partial_offload: Annotated[
        bool, Field(description="can split one model between GPU and RAM")
    ] = False
    gpu_memory_fraction: Annotated[
        float | None,
        Field(gt=0, le=1, description="share of total VRAM the runtime claims (vLLM: 0.9)"),
    ] = None
    kv_cache_types: Annotated[
        list[Literal["f16", "q8_0", "q4_0", "fp8"]],
        Field(
            description="KV cache types it can be told to use besides its default 16-bit "
            "(or the model's own dtype); empty: only the default"
        ),
    ] = field(default_factory=list)
    kv_cache_source: Annotated[
        str | None, Field(description="key of `sources` for kv_cache_types")
    ] = None
    overheads: list[Overhead] = field(default_factory=list)
    default_context: Annotated[
        DefaultContext | None, Field(description="the context a model gets when the user sets none")
    ] = None
    multi_node: MultiNode | None = None
    implements: Implements | None = None
    detect: Detect = field(default_factory=Detect)
    sources: dict[str, Url]
    source: Annotated[str, Field(description="key of `sources` for the facts above")]
    notes: str | None = None

    @cached_property
    def precision_names(self) -> frozenset[str]:
        """``precisions`` as a set: the estimator asks it ~12,000 times a scan."""
        return frozenset(self.precisions)

    def __post_init__(self) -> None:
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


@entry
class Gpu(Strict):
    id: Slug
    name: str
    vendor: Literal["nvidia", "amd", "apple", "intel"]
    aliases: list[str] = field(default_factory=list)
    memory: Annotated[
        SizeText, Field(description="capacity; vendors' 'GB' of DRAM is binary (GiB)")
    ]
    memory_type: str | None = None
    bandwidth: RateText
    compute_capability: ComputeCapability | None = None
    fp16_tflops: Annotated[
        float | None, Field(gt=0, le=10**6, description="dense FP16 tensor throughput")
    ] = None
    unified_memory: bool = False
    memory_options: Annotated[
        list[SizeText], Field(description='other memory sizes sold (`--gpu "M3 Max 64GB"`)')
    ] = field(default_factory=list)
    gfx_target: Annotated[
        str | None, Field(pattern=r"^gfx[0-9a-f]+$", description="AMD LLVM target")
    ] = None
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


@entry
class BackendTargets(Strict):
    """The GPU architectures one framework's builds support on a backend."""

    framework: Slug
    targets: Annotated[
        list[str], Field(description="AMD gfx targets (gfx1100 ...) its builds ship for")
    ]
    source: Url


@entry
class Backend(Strict):
    """A GPU runtime (CUDA, ROCm, Metal, Vulkan, SYCL ...): which vendors' GPUs it
    drives, which frameworks use it, and what it costs per GPU."""

    id: Slug
    name: str
    vendors: list[Literal["nvidia", "amd", "apple", "intel"]]
    frameworks: Annotated[list[Slug], Field(description="framework ids that can run models on it")]
    # A framework's builds may cover only some architectures (ROCm gfx targets).
    targets: list[BackendTargets] = field(default_factory=list)
    unsupported_precisions: Annotated[
        list[str], Field(description="precisions it has no kernels for (MPS: fp8, int8)")
    ] = field(default_factory=list)
    ggml_context: Annotated[
        SizeText, Field(description="per-GPU runtime context of a llama.cpp process")
    ]
    torch_context: Annotated[
        SizeText, Field(description="per-GPU runtime context of a PyTorch process")
    ]
    context_estimate: Annotated[
        bool, Field(description="true when the context sizes are not measured")
    ]
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


@entry
class CatalogFile(Strict):
    """One TOML file: any mix of [[model]], [[framework]] and [[gpu]] tables."""

    model: list[Model] = field(default_factory=list)
    framework: list[Framework] = field(default_factory=list)
    gpu: list[Gpu] = field(default_factory=list)
    backend: list[Backend] = field(default_factory=list)
