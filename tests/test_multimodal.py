"""Non-LLM architecture parts counted in memory: vision towers, DiT pipelines, retirements.

Each figure is checked against the published config it comes from (the numbers are
restated here from config.json, independently of the catalog), or against a published
measurement.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from canirun.catalog import load_catalog
from canirun.catalog.constraints import validated
from canirun.catalog.schema import Lifecycle, Model
from canirun.estimate import gguf
from canirun.estimate.capacity import capacity
from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.params import decoder_params
from canirun.estimate.precision import PRECISIONS
from canirun.estimate.rate import Options, rate_variant
from canirun.estimate.results import Workload
from canirun.estimate.runtime import (
    activations,
    dit_activation_bytes,
    offload_peak,
    vae_decode_bytes,
    vision_activations,
)
from canirun.estimate.weights import weights
from canirun.hardware.model import Cpu, Docker, Gpu, Hardware, Host, Memory, OsInfo

CATALOG = load_catalog(user_dir=False)
GIB = 2**30
MIB = 2**20


def _host(vram_gib: float | None, ram_gib: int = 64, cc: str = "8.9") -> Host:
    gpus = ()
    if vram_gib is not None:
        mem = round(vram_gib * GIB)
        gpus = (
            Gpu(
                vendor="nvidia",
                name="NVIDIA test GPU",
                memory_total_bytes=mem,
                memory_free_bytes=mem,
                index=0,
                compute_capability=cc,
                memory_bandwidth_bytes_per_s=1_008_000_000_000,
            ),
        )
    return Host(
        Hardware(
            cpu=Cpu(logical_cores=16, arch="x86_64"),
            memory=Memory(total_bytes=ram_gib * GIB, available_bytes=ram_gib * GIB),
            gpus=gpus,
            os=OsInfo(system="Linux", machine="x86_64", docker=Docker(cli=False, daemon=False)),
        )
    )


def _rate(variant_id: str, h: Host, **opts: object) -> list:  # type: ignore[type-arg]
    cap = capacity(h, CATALOG.gpus, ram_bandwidth=80 * 10**9)
    ref = CATALOG.variant_by_id[variant_id]
    return rate_variant(ref, CATALOG, cap, Options(**opts))  # type: ignore[arg-type]


# -- vision towers, from the published vision_config ---------------------------------------

# Qwen2.5-VL vision_config (identical in the 3B, 7B and 72B config.json files) and the
# merger's output width (= the text hidden size).
QWEN_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "patch_size": 14}
QWEN_TEXT_HIDDEN = {"3b": 2048, "7b": 3584, "72b": 8192}


def _qwen25_vl_tower(cfg: dict[str, int]) -> int:
    """Qwen2_5_VisionTransformerPretrainedModel, term by term from modeling_qwen2_5_vl.py."""
    h, i, p = cfg["hidden_size"], cfg["intermediate_size"], cfg["patch_size"]
    patch_embed = 3 * 2 * p * p * h  # Conv3d over (2 frames, p, p), no bias
    norms = 2 * h  # two RMSNorms
    qkv = h * 3 * h + 3 * h
    proj = h * h + h
    mlp = 2 * (h * i + i) + (i * h + h)  # gate, up, down (all with bias)
    return patch_embed + cfg["depth"] * (norms + qkv + proj + mlp)


def _qwen25_vl_merger(text_hidden: int, vision_hidden: int = 1280) -> int:
    width = vision_hidden * 4  # 2x2 patches
    return vision_hidden + (width * width + width) + (width * text_hidden + text_hidden)


@pytest.mark.parametrize("size", ["3b", "7b", "72b"])
def test_qwen25_vl_tower_and_merger_match_the_config(size: str) -> None:
    v = CATALOG.variant_by_id[f"qwen2.5-vl-{size}"].variant
    by_role = {c.role: c.params for c in v.components}
    assert by_role["vision-tower"] == _qwen25_vl_tower(QWEN_VISION) == 631_975_680
    assert by_role["projector"] == _qwen25_vl_merger(QWEN_TEXT_HIDDEN[size])
    assert v.encoder is not None
    assert (v.encoder.layers, v.encoder.hidden) == (32, 1280)
    assert v.params is not None
    assert v.arch is not None
    # Decoder + tower + merger is the whole checkpoint (norms and biases are the rest).
    total = decoder_params(v.arch) + sum(by_role.values())
    assert total / v.params.total == pytest.approx(1, abs=0.003)


def _siglip_tower(hidden: int, inter: int, layers: int, image: int, patch: int) -> int:
    """SiglipVisionModel without its pooling head, term by term (modeling_siglip.py)."""
    patch_embed = 3 * patch * patch * hidden + hidden
    positions = (image // patch) ** 2 * hidden
    per_layer = (
        2 * 2 * hidden + 4 * (hidden * hidden + hidden) + 2 * hidden * inter + inter + hidden
    )
    return patch_embed + positions + layers * per_layer + 2 * hidden  # + post_layernorm


@pytest.mark.parametrize(("size", "text_hidden"), [("4b", 2560), ("12b", 3840), ("27b", 5376)])
def test_gemma3_siglip_tower_matches_the_vision_config(size: str, text_hidden: int) -> None:
    v = CATALOG.variant_by_id[f"gemma-3-{size}"].variant
    by_role = {c.role: c.params for c in v.components}
    # vision_config: hidden 1152, intermediate 4304, 27 layers, 896 px, patch 14.
    assert by_role["vision-tower"] == _siglip_tower(1152, 4304, 27, 896, 14)
    assert by_role["projector"] == 1152 + 1152 * text_hidden
    assert v.image is not None
    assert v.image.tokens == 256
    assert v.params is not None
    assert v.arch is not None
    # The card's totals: 4.3B, 12.2B, 27.4B.
    card = {"4b": 4.3, "12b": 12.2, "27b": 27.4}[size]
    assert v.params.total / 1e9 == pytest.approx(card, abs=0.05)


@pytest.mark.parametrize(("size", "text_hidden"), [("11b", 4096), ("90b", 8192)])
def test_llama32_vision_projector_and_cross_layers_match_the_config(
    size: str, text_hidden: int
) -> None:
    v = CATALOG.variant_by_id[f"llama-3.2-vision-{size}"].variant
    projector = next(c.params for c in v.components if c.role == "projector")
    assert projector == 7680 * text_hidden + text_hidden  # Linear(vision_output_dim, hidden)
    assert v.image is not None
    assert v.arch is not None
    # cross_attention_layers in text_config: every fifth layer from 3.
    assert v.image.cross_attention_layers == len(range(3, v.arch.layers, 5))
    # 4 tiles x (560 / 14)^2 patches + a class token each.
    assert v.image.cross_tokens == 4 * ((560 // 14) ** 2 + 1)


def test_llama32_vision_kv_cache_splits_text_and_image() -> None:
    """Self-attention layers cache the context; cross-attention layers the image once."""
    ref = CATALOG.variant_by_id["llama-3.2-vision-11b"]
    arch = ref.variant.arch
    assert arch is not None
    text = 2 * 32 * 8 * 128 * 4096 * 2  # 32 self-attention layers, 8 KV heads x 128, f16
    image = 2 * 8 * 8 * 128 * 6404 * 2  # 8 cross-attention layers over 6,404 positions
    (r,) = _rate(ref.id, _host(24), precisions=("fp16",))
    assert r.memory.kv_cache_bytes == text + image
    # Doubling the context doubles only the self-attention part; the image part stays.
    (r2,) = _rate(ref.id, _host(24), precisions=("fp16",), workload=Workload(context_tokens=8192))
    assert r2.memory.kv_cache_bytes == 2 * text + image
    # A plain decoder of the same shape would hold the context in all 40 layers.
    assert kv_cache_bytes(arch, 8192) > 2 * text + image


def test_a_vlm_counts_its_tower_at_16_bit_in_a_gguf_estimate() -> None:
    ref = CATALOG.variant_by_id["qwen2.5-vl-7b"]
    v = ref.variant
    assert v.params is not None
    assert v.arch is not None
    tower = v.params.total - decoder_params(v.arch)
    w = weights(ref.model, v, PRECISIONS["Q4_K_M"])
    assert w is not None
    assert v.arch.gguf_arch is not None
    assert w.bytes == gguf.gguf_weight_bytes(v.arch, v.arch.gguf_arch, "Q4_K_M") + tower * 2
    # Decoding reads the decoder only: the F16 tower is left out of the bytes per token.
    assert w.active_fraction == pytest.approx(1 - tower * 2 / w.bytes)


def test_a_vlm_adds_the_vision_tower_buffer_and_says_what_one_image_costs() -> None:
    (r,) = _rate("qwen2.5-vl-7b", _host(24), precisions=("bf16",))
    lines = " ".join(r.memory.breakdown)
    assert "vision tower" in lines
    assert "1,369 tokens of the context" in lines
    # One full-attention layer over 5,476 patches: f32 scores and softmax, 16 heads, 3.8 GB.
    assert r.memory.overhead_bytes > 2 * 5476**2 * 16 * 4


def test_a_vlm_without_an_image_block_is_unchanged() -> None:
    """Kosmos-2 and IDEFICS have towers but no `image` block: no extra buffer."""
    (r,) = _rate("kosmos-2-patch14-224", _host(24), precisions=("fp16",))
    assert not any("vision tower" in line for line in r.memory.breakdown)


# -- diffusion transformers -----------------------------------------------------------------


def test_flux_components_sum_to_the_pipeline() -> None:
    for key in ("dev", "schnell"):
        v = CATALOG.variant_by_id[f"flux-1-{key}"].variant
        assert v.params is not None
        assert sum(c.params for c in v.components) == v.params.total
        roles = sorted(c.role or "" for c in v.components)
        assert roles == ["denoiser", "text-encoder", "text-encoder", "vae"]
    dev = CATALOG.variant_by_id["flux-1-dev"].variant
    schnell = CATALOG.variant_by_id["flux-1-schnell"].variant
    # The diffusers benchmark lists FluxTransformer2DModel at 11.9B parameters.
    transformer = next(c.params for c in dev.components if c.role == "denoiser")
    assert transformer / 1e9 == pytest.approx(11.9, abs=0.05)
    # schnell lacks only the guidance embedder: Linear(256, 3072) + Linear(3072, 3072).
    dev_t = transformer
    schnell_t = next(c.params for c in schnell.components if c.role == "denoiser")
    assert dev_t - schnell_t == (256 * 3072 + 3072) + (3072 * 3072 + 3072)


def test_sd_text_encoders_agree_across_sd3_and_sd35() -> None:
    sd3 = CATALOG.variant_by_id["stable-diffusion-3-medium"].variant
    for key in ("large", "medium"):
        sd35 = CATALOG.variant_by_id[f"stable-diffusion-3.5-{key}"].variant
        encoders = sorted(c.params for c in sd35.components if c.role == "text-encoder")
        assert encoders == sorted(c.params for c in sd3.components if c.role == "text-encoder")
        assert sd35.params is not None
        assert sum(c.params for c in sd35.components) == sd35.params.total


def test_dit_activations_cover_the_measured_flux_transformer_peak() -> None:
    """diffusers benchmark: FLUX.1-dev's bf16 transformer peaks at 22.63 GiB, 0.46 GiB above
    its 11.9B x 2 bytes of weights; the estimate must not be below, nor wildly above."""
    dev = CATALOG.variant_by_id["flux-1-dev"].variant
    assert dev.denoiser is not None
    transformer = next(c.params for c in dev.components if c.role == "denoiser")
    measured = round(22.63 * GIB) - transformer * 2
    estimate = dit_activation_bytes(dev.denoiser, 1024, 1)
    assert measured <= estimate <= 3 * measured


def test_activations_scale_with_resolution_and_take_the_larger_stage() -> None:
    ref = CATALOG.variant_by_id["flux-1-dev"]
    v = ref.variant
    assert v.denoiser is not None
    act, how = activations(ref.model, v, 0, Workload())
    assert act == max(dit_activation_bytes(v.denoiser, 1024, 1), vae_decode_bytes(1024, 1))
    assert "VAE decode" in how
    big, _ = activations(ref.model, v, 0, Workload(resolution=2048))
    assert big == pytest.approx(4 * act, rel=0.01)  # the VAE decode grows with the pixels


def test_offload_keeps_one_stage_and_its_activations() -> None:
    v = CATALOG.variant_by_id["flux-1-dev"].variant
    assert v.denoiser is not None
    peak = offload_peak(v, 2.0, Workload())
    transformer = next(c.params for c in v.components if c.role == "denoiser")
    assert peak == transformer * 2 + dit_activation_bytes(v.denoiser, 1024, 1)
    sd3 = CATALOG.variant_by_id["stable-diffusion-3-medium"].variant
    text_stage = sum(c.params for c in sd3.components if c.role == "text-encoder") * 2
    assert offload_peak(sd3, 2.0, Workload()) == text_stage  # T5 + both CLIPs outweigh the rest


@pytest.mark.parametrize(
    ("vram", "precision", "expected"),
    [
        (48, "bf16", "gpu"),  # 33.7 GB of weights + the VAE decode fit
        # the bf16 transformer alone (23.8 GB) leaves no room for a model offload;
        # sequential offload (ComfyUI --lowvram, diffusers) streams it instead
        (24, "bf16", "offload"),
        (24, "fp8", "gpu"),
        (16, "fp8", "offload"),  # one stage at a time: the fp8 transformer, 11.9 GB
    ],
)
def test_flux_dev_verdicts_by_card_and_precision(vram: int, precision: str, expected: str) -> None:
    (r,) = _rate("flux-1-dev", _host(vram), precisions=(precision,), framework="diffusers")
    assert r.verdict == expected


def test_sd3_medium_estimates_stay_above_the_published_diffusers_figures() -> None:
    """huggingface.co/blog/sd3: 18.765 GB for the whole fp16 pipeline at 1024 px and 12.0645 GB
    with enable_model_cpu_offload(), both read as GiB (the larger reading)."""
    (full,) = _rate("stable-diffusion-3-medium", _host(80), precisions=("fp16",))
    assert full.verdict == "gpu"
    assert full.memory.total_bytes >= 18.765 * GIB
    (off,) = _rate(
        "stable-diffusion-3-medium", _host(12.5), precisions=("fp16",), framework="diffusers"
    )
    assert off.verdict == "offload"
    # Within the reference suite's tolerance of the GB reading (tests/test_reference.py).
    assert off.memory.gpu_bytes >= 0.95 * 12.0645e9


# -- embeddings with long inputs ------------------------------------------------------------


def test_long_context_embedders_assume_512_token_texts_unless_told() -> None:
    ref = CATALOG.variant_by_id["bge-m3"]
    short, how = activations(ref.model, ref.variant, 0, Workload())
    assert "512 tokens (reads up to 8,192" in how
    long, _ = activations(ref.model, ref.variant, 0, Workload(seq_len=8192))
    assert long > 100 * short  # attention scores grow with the square of the length


# -- dated access status ----------------------------------------------------------------------


def test_a_retired_variant_says_when_and_what_replaced_it() -> None:
    (r,) = _rate("imagen-2", _host(None))
    assert r.verdict == "unsupported"
    assert r.access == "retired"
    assert "2025-09-24" in r.reasons[0]
    assert "Imagen 3" in r.reasons[0]
    (dalle,) = _rate("dall-e-3", _host(None))
    assert dalle.access == "retired"
    assert "2026-05-12" in dalle.reasons[0]


def test_retired_needs_a_dated_lifecycle() -> None:
    base = {
        "id": "x",
        "name": "X",
        "family": "x",
        "category": "vision",
        "task": "image-generation",
        "kind": "diffusion",
        "access": "retired",
        "access_note": "gone",
        "license": "proprietary",
        "modalities": ["image"],
        "api": {"provider": "V", "hosts": ["V API"], "source": "https://v.example/api"},
        "variants": [{"key": "1", "name": "X 1"}],
    }
    with pytest.raises(ValidationError, match="lifecycle"):
        validated(Model, base)
    life = {"status": "retired", "date": "2025-09-24", "source": "https://v.example/d"}
    assert validated(Model, {**base, "lifecycle": life}).lifecycle is not None
    with pytest.raises(ValidationError, match="date"):
        validated(Lifecycle, {**life, "date": "September 2025"})


# -- compute-capability floors --------------------------------------------------------------


def test_vllm_needs_compute_capability_75_and_alphafold3_runs_on_a_p100() -> None:
    vllm = CATALOG.framework_by_id["vllm"]
    assert vllm.min_compute_capability == "7.5"
    v100 = capacity(_host(32, cc="7.0"), CATALOG.gpus)
    (r,) = rate_variant(
        CATALOG.variant_by_id["qwen2.5-vl-7b"],
        CATALOG,
        v100,
        Options(precisions=("bf16",), framework="vllm"),
    )
    # Refused either by vLLM's own floor or by the stricter bf16 rule (8.0): never planned there.
    assert r.verdict not in ("gpu", "multi-gpu", "offload")
    assert any("compute capability" in reason for reason in r.reasons)
    assert CATALOG.framework_by_id["alphafold3"].min_compute_capability == "6.0"


# -- measured activations (tests/reference/diffusion-measured.toml) -------------------------

MEASURED = tomllib.loads(
    (Path(__file__).parent / "reference" / "diffusion-measured.toml").read_text()
)["measurement"]


@pytest.mark.parametrize(
    "row", MEASURED, ids=lambda r: f"{r['part']}-{r['precision']}-{r['resolution']}"
)
def test_activation_terms_cover_the_measured_peaks(row: dict[str, object]) -> None:
    side = int(row["resolution"])  # type: ignore[call-overload]
    measured = int(row["peak_growth_bytes"])  # type: ignore[call-overload]
    if row["part"] == "vae":
        estimate = vae_decode_bytes(side, 1)
    elif row["part"] == "qwen2.5-vl-tower":
        v = CATALOG.variant_by_id["qwen2.5-vl-7b"].variant
        assert v.encoder is not None
        assert v.image is not None
        assert v.encoder.image_size == side
        estimate = vision_activations(v.encoder, v.image)
        if row["attention"] == "sdpa":  # fused attention: far below the eager bound
            assert measured <= estimate
            return
    else:
        dev = CATALOG.variant_by_id["flux-1-dev"].variant
        assert dev.denoiser is not None
        estimate = dit_activation_bytes(dev.denoiser, side, 1)
    assert measured <= estimate <= 3 * measured
