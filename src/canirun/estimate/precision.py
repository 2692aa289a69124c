"""Precisions canirun rates models at: GGUF quantisation types and PyTorch dtypes.

Bits per weight of the GGUF block types are exact (ggml's block layouts:
ggml/src/ggml-common.h). The quality rank orders precisions from worst to best
for choosing "the best precision that fits"; it follows the perplexity order of
llama.cpp's quantisation table (tools/quantize/README.md) and is an ordering,
not a score.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Family = Literal["ggml", "torch", "mlx"]


class Precision(msgspec.Struct, frozen=True):
    name: str
    family: Family
    # Typical bits per weight of the whole file, used only when a model has no
    # architecture numbers for the per-tensor recipe (GGUF) or for dense storage.
    bits: float
    quality: int
    label: str


# ggml block types: bits per weight (block bytes * 8 / block elements).
GGML_BPW: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,  # 34 bytes / 32 weights
    "Q6_K": 6.5625,  # 210 bytes / 256
    "Q5_K": 5.5,  # 176 bytes / 256
    "Q5_1": 6.0,  # 24 bytes / 32
    "Q5_0": 5.5,  # 22 bytes / 32
    "Q4_K": 4.5,  # 144 bytes / 256
    "Q4_1": 5.0,  # 20 bytes / 32
    "Q4_0": 4.5,  # 18 bytes / 32
    "IQ4_NL": 4.5,  # 18 bytes / 32
    "Q3_K": 3.4375,  # 110 bytes / 256
    "Q2_K": 2.625,  # 84 bytes / 256
    "MXFP4": 4.25,  # 17 bytes / 32: one E8M0 scale byte + 32 4-bit values (OCP MX spec)
}

# Block sizes: a row length not divisible by it cannot use the type.
GGML_BLOCK: dict[str, int] = {
    "F32": 1,
    "F16": 1,
    "BF16": 1,
    "Q8_0": 32,
    "Q5_1": 32,
    "Q5_0": 32,
    "Q4_1": 32,
    "Q4_0": 32,
    "IQ4_NL": 32,
    "MXFP4": 32,
    "Q6_K": 256,
    "Q5_K": 256,
    "Q4_K": 256,
    "Q3_K": 256,
    "Q2_K": 256,
}

# MLX affine quantisation (mlx.nn.quantize, called by mlx_lm.convert -q): every group of
# 64 weights stores `bits`-bit integers plus one scale and one bias in the model's 16-bit
# dtype, so a weight costs bits + 2 x 16 / 64 = bits + 0.5. mlx-lm's default is 4 bits,
# group size 64 (mlx_lm/utils.py quantize_model, defaults_for_mode "affine": (64, 4)).
MLX_GROUP = 64
MLX_BPW: dict[str, float] = {f"mlx-{bits}bit": bits + 2 * 16 / MLX_GROUP for bits in (3, 4, 6, 8)}

_ALL = [
    # GGUF file types (llama.cpp, Ollama). `bits`: the average of real mixed files
    # (field notes: Q4_K_M ~4.85-4.9, Q5_K_M ~5.7, Q3_K_M ~3.9, Q2_K ~3.0-3.35).
    Precision("Q2_K", "ggml", 3.2, 10, "2-bit k-quant"),
    Precision("Q3_K_S", "ggml", 3.5, 20, "3-bit k-quant, small"),
    Precision("Q3_K_M", "ggml", 3.9, 25, "3-bit k-quant, medium"),
    Precision("Q3_K_L", "ggml", 4.3, 30, "3-bit k-quant, large"),
    Precision("Q4_0", "ggml", 4.55, 35, "4-bit legacy quant"),
    Precision("Q4_K_S", "ggml", 4.6, 40, "4-bit k-quant, small"),
    Precision("Q4_K_M", "ggml", 4.88, 45, "4-bit k-quant, medium"),
    Precision("Q5_K_S", "ggml", 5.55, 50, "5-bit k-quant, small"),
    Precision("Q5_K_M", "ggml", 5.7, 55, "5-bit k-quant, medium"),
    Precision("Q6_K", "ggml", 6.56, 60, "6-bit k-quant"),
    Precision("Q8_0", "ggml", 8.5, 70, "8-bit"),
    # gpt-oss as released: routed experts MXFP4, the other tensors Q8_0 (llama.cpp
    # file type MXFP4_MOE). Only offered for models whose experts are MXFP4.
    Precision("MXFP4_MOE", "ggml", 4.6, 72, "MXFP4 experts, Q8_0 elsewhere"),
    Precision("BF16", "ggml", 16.0, 80, "bfloat16 GGUF"),
    Precision("F16", "ggml", 16.0, 80, "float16 GGUF"),
    # PyTorch-side precisions (Transformers, vLLM, TGI, Diffusers...). Quantised
    # ones apply to linear layers; embeddings and the output head stay 16-bit.
    Precision("int4", "torch", 4.156, 38, "4-bit GPTQ/AWQ, group size 128"),
    Precision("int8", "torch", 8.0, 65, "8-bit weights (LLM.int8 / W8A8)"),
    Precision("fp8", "torch", 8.0, 68, "FP8 E4M3 weights"),
    # gpt-oss's published safetensors: experts MXFP4, everything else bf16.
    Precision("mxfp4", "torch", 4.25, 75, "MXFP4 experts, bf16 elsewhere (as released)"),
    Precision("fp16", "torch", 16.0, 80, "float16"),
    Precision("bf16", "torch", 16.0, 80, "bfloat16"),
    Precision("fp32", "torch", 32.0, 90, "float32"),
    # MLX affine quantisation as mlx-lm's convert writes it (see MLX_BPW).
    Precision("mlx-3bit", "mlx", MLX_BPW["mlx-3bit"], 22, "MLX 3-bit affine, group 64"),
    Precision("mlx-4bit", "mlx", MLX_BPW["mlx-4bit"], 36, "MLX 4-bit affine, group 64"),
    Precision("mlx-6bit", "mlx", MLX_BPW["mlx-6bit"], 58, "MLX 6-bit affine, group 64"),
    Precision("mlx-8bit", "mlx", MLX_BPW["mlx-8bit"], 69, "MLX 8-bit affine, group 64"),
]

PRECISIONS: dict[str, Precision] = {p.name: p for p in _ALL}
_BY_LOWER = {p.name.lower(): p for p in _ALL}

# What `scan` evaluates by default (issue 4): the common GGUF files and the
# PyTorch dtypes and quantisations.
GGUF_SCAN = ("Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")
TORCH_SCAN = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
MLX_SCAN = ("mlx-3bit", "mlx-4bit", "mlx-6bit", "mlx-8bit")


def lookup(name: str) -> Precision | None:
    """Case-insensitive: "q4_k_m", "Q4_K_M", "FP16", "f16"->F16 (GGUF)."""
    return _BY_LOWER.get(name.strip().lower())


def torch_bytes_per_param(name: str) -> float:
    return {
        "fp32": 4.0,
        "fp16": 2.0,
        "bf16": 2.0,
        "fp8": 1.0,
        "int8": 1.0,
        "int4": 4.156 / 8,
        "mxfp4": 4.25 / 8,
    }[name]


# Precisions that exist only for models whose routed experts are published in MXFP4.
MXFP4_ONLY = frozenset({"MXFP4_MOE", "mxfp4"})
