"""Decode speed of text decoders: memory-bound, so bandwidth / bytes read per token.

Each generated token reads the active weights once plus the KV cache so far.
Real runtimes reach only part of peak bandwidth; published efficiency factors
are about 0.5-0.6 on GPUs (field notes), which gives the range. The result
always carries its inputs, so a user can check it with ``llama-bench``.
"""

from __future__ import annotations

from dataclasses import replace

from canirun.estimate.capacity import Capacity
from canirun.estimate.placement import Placement
from canirun.estimate.results import Speed

EFFICIENCY = (0.5, 0.6)


def _sig(x: float) -> float:
    """Three significant figures: 0.1 steps would make 0.46 and 0.54 tok/s look equal."""
    return float(f"{x:.3g}")


def _range(bandwidth: float, per_token: int) -> tuple[float, float, float]:
    low, high = (bandwidth * e / per_token for e in EFFICIENCY)
    return low, (low + high) / 2, high


def decode_speed(placement: Placement, cap: Capacity, active_weights: int, kv: int) -> Speed | None:
    """tokens/s for a runnable placement, or a Speed with None figures and the reason."""
    per_token = active_weights + kv
    if per_token <= 0 or placement.verdict not in ("gpu", "multi-gpu", "offload", "cpu"):
        return None
    slots = {s.index: s for s in cap.gpus}
    used = [slots[i] for i in placement.gpus if i in slots]
    gpu_bw = min((s.bandwidth_bytes_per_s or 0 for s in used), default=0) or None
    ram_bw = cap.ram_bandwidth_bytes_per_s
    if placement.verdict in ("gpu", "multi-gpu"):
        if gpu_bw is None:
            return Speed(
                None, None, None, None, per_token, EFFICIENCY, "gpu", "GPU memory bandwidth unknown"
            )
        # Layer split runs the GPUs one after another; tensor parallelism at once.
        bandwidth = gpu_bw * (len(used) if placement.split == "tensor-parallel" else 1)
        low, mid, high = _range(bandwidth, per_token)
        return Speed(
            _sig(mid),
            _sig(low),
            _sig(high),
            round(bandwidth),
            per_token,
            EFFICIENCY,
            "gpu",
        )
    if ram_bw is None:
        return Speed(
            None,
            None,
            None,
            None,
            per_token,
            EFFICIENCY,
            "cpu",
            "RAM bandwidth unknown: pass --ram-bandwidth (GB/s)",
        )
    if placement.verdict == "cpu":
        low, mid, high = _range(ram_bw, per_token)
        return Speed(_sig(mid), _sig(low), _sig(high), ram_bw, per_token, EFFICIENCY, "cpu")
    if gpu_bw is None or placement.gpu_bytes is None or placement.ram_bytes is None:
        return Speed(None, None, None, None, per_token, EFFICIENCY, "gpu+cpu", "bandwidth unknown")
    share_gpu = placement.gpu_bytes / (placement.gpu_bytes + placement.ram_bytes)
    seconds = [
        per_token * share_gpu / (gpu_bw * e) + per_token * (1 - share_gpu) / (ram_bw * e)
        for e in EFFICIENCY
    ]
    low, high = 1 / seconds[0], 1 / seconds[1]
    return Speed(
        _sig((low + high) / 2),
        _sig(low),
        _sig(high),
        None,
        per_token,
        EFFICIENCY,
        "gpu+cpu",
        f"{share_gpu:.0%} of the bytes read from GPU memory at {gpu_bw / 1e9:.0f} GB/s, "
        f"the rest from RAM at {ram_bw / 1e9:.0f} GB/s",
    )


# Share of peak compute prefill reaches: calibrated on llama.cpp's CPU backend
# (benchmarks/speed.py on this project's 2-core VM); GPUs assumed the same. Estimate.
PREFILL_EFFICIENCY = 0.5


def prefill_flops_per_token(active_params: int, layers: int, attn_width: int, context: int) -> int:
    """2 FLOPs per active weight, plus causal attention over half the context on average."""
    return 2 * active_params + 2 * layers * context * attn_width


def with_prefill(
    speed: Speed | None,
    placement: Placement,
    cap: Capacity,
    flops_per_token: int,
    context: int,
) -> Speed | None:
    """Add prompt-processing speed and time to first token (the whole context as prompt)."""
    if speed is None:
        return None
    slots = {s.index: s for s in cap.gpus}
    used = [slots[i] for i in placement.gpus if i in slots]
    if placement.verdict in ("gpu", "multi-gpu", "multi-node", "offload") and used:
        known = [s.fp16_flops_per_s for s in used if s.fp16_flops_per_s]
        parallel = len(used) if placement.split == "tensor-parallel" else 1
        flops = min(known) * parallel if len(known) == len(used) else None
        what, missing = "GPU fp16 tensor throughput (GPU table)", "no FP16 figure for this GPU"
    else:
        flops, what = cap.cpu_flops_per_s, "CPU cores x clock x FLOP/cycle"
        missing = "the CPU's clock was not read"
    if not flops or flops_per_token <= 0:
        return replace(speed, prefill_note=f"unknown: {missing}")
    tps = flops * PREFILL_EFFICIENCY / flops_per_token
    return replace(
        speed,
        prefill_tokens_per_second=_sig(tps),
        time_to_first_token_s=_sig(context / tps),
        compute_flops_per_s=round(flops),
        prefill_note=(
            f"{what} {flops / 1e12:.3g} TFLOP/s x {PREFILL_EFFICIENCY} / "
            f"{flops_per_token / 1e9:.3g} GFLOP per token"
            + (
                " (GPU+RAM: the GPU's share only, an upper bound)"
                if placement.verdict == "offload"
                else ""
            )
        ),
    )
