"""Measure the activation memory of diffusion-pipeline parts on the CPU, with random weights.

Writes the rows of tests/reference/diffusion-measured.toml. Needs torch and diffusers, which
are not canirun dependencies (install them in a separate environment):

    python scripts/measure_diffusion.py vae fp32 512
    python scripts/measure_diffusion.py flux fp32 1024

Each run is a fresh process: the model is built from the published component config with
random weights (nothing is downloaded), the peak resident set (VmHWM) is reset, one VAE decode
or one forward of a shallow FLUX transformer (2 double- + 2 single-stream blocks: activations
do not depend on depth) runs, and the growth of the peak over the resident set before the run
is printed. CPU kernels differ from CUDA ones, so this is a check of the order of magnitude and
of how activations scale, not of a GPU's exact allocator behaviour.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set


def _vae(dtype: Any, side: int) -> tuple[Any, Any]:
    import torch
    from diffusers import AutoencoderKL

    # The 16-channel VAE of SD3, SD 3.5 and FLUX.1 (vae/config.json).
    model = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=16,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    latent = torch.randn(1, 16, side // 8, side // 8, dtype=dtype)
    return model.to(dtype).eval(), lambda: model.decode(latent).sample


def _flux(dtype: Any, side: int) -> tuple[Any, Any]:
    import torch
    from diffusers import FluxTransformer2DModel

    # FLUX.1-dev transformer/config.json, with 2 + 2 blocks instead of 19 + 38.
    model = FluxTransformer2DModel(
        in_channels=64,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=4096,
        pooled_projection_dim=768,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    ).to(dtype)
    n_img, n_txt = (side // 16) ** 2, 512
    inputs = {
        "hidden_states": torch.randn(1, n_img, 64, dtype=dtype),
        "encoder_hidden_states": torch.randn(1, n_txt, 4096, dtype=dtype),
        "pooled_projections": torch.randn(1, 768, dtype=dtype),
        "timestep": torch.tensor([0.5], dtype=dtype),
        "img_ids": torch.zeros(n_img, 3),
        "txt_ids": torch.zeros(n_txt, 3),
        "guidance": torch.tensor([3.5], dtype=dtype),
    }
    return model.eval(), lambda: model(**inputs).sample


def main(argv: list[str]) -> int:
    import torch

    what, dtype_name, side = argv[0], argv[1], int(argv[2])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    build = {"vae": _vae, "flux": _flux}[what]
    with torch.inference_mode():
        _model, run = build(dtype, side)
        gc.collect()
        _reset_peak()
        before = _status("VmRSS")
        start = time.time()
        run()
        seconds = time.time() - start
        peak = _status("VmHWM")
    row = {
        "part": what,
        "precision": dtype_name,
        "resolution": side,
        "peak_growth_bytes": peak - before,
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
