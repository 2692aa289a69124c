"""Decode speed of text decoders: bytes read per token over bandwidth, or the CPU's work.

Each generated token reads the active weights once plus the KV cache so far.
Real runtimes reach only part of peak bandwidth; published efficiency factors
are about 0.5-0.6 on GPUs (field notes), which gives the range. The result
always carries its inputs, so a user can check it with ``llama-bench``.

On a CPU, llama.cpp's decode is not always memory-bound: each weight is also
unpacked and multiplied, and the usable cores may take longer for that than the
memory takes to deliver the bytes (a 2-core VM runs a 1B Q4_K_M model at a
quarter of its bandwidth limit). CPU decode time is therefore
max(memory time, compute time) + attention + a fixed cost per layer
(cpu_decode_time), with the memory read at CPU_EFFICIENCY of the measured
bandwidth, which is lower on CPUs than on GPUs.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from canirun.catalog.schema import Arch
from canirun.estimate.capacity import Capacity
from canirun.estimate.memo import ByIdentity
from canirun.estimate.placement import Placement
from canirun.estimate.results import Speed

EFFICIENCY = (0.5, 0.6)


def _sig(x: float) -> float:
    """Three significant figures: 0.1 steps would make 0.46 and 0.54 tok/s look equal."""
    return float(f"{x:.3g}")


def _range(
    bandwidth: float, per_token: int, efficiency: tuple[float, float] = EFFICIENCY
) -> tuple[float, float, float]:
    low, high = (bandwidth * e / per_token for e in efficiency)
    return low, (low + high) / 2, high


def decode_speed(
    placement: Placement,
    cap: Capacity,
    active_weights: int,
    kv: int,
    cpu_work: CpuWork | None = None,
) -> Speed | None:
    """tokens/s for a runnable placement, or a Speed with None figures and the reason.

    `cpu_work` is llama.cpp's CPU work per token (its CPU backend and the layers it keeps in
    RAM); None for runtimes it does not model, whose CPU decode stays memory-bound.
    """
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
        if cpu_work is None:
            # Other runtimes: memory-bound, at the CPU's share of the bandwidth.
            low, mid, high = _range(ram_bw, per_token, CPU_EFFICIENCY)
            return Speed(_sig(mid), _sig(low), _sig(high), ram_bw, per_token, CPU_EFFICIENCY, "cpu")
        return _cpu_speed(cap, ram_bw, per_token, cpu_work)
    if gpu_bw is None or placement.gpu_bytes is None or placement.ram_bytes is None:
        return Speed(None, None, None, None, per_token, EFFICIENCY, "gpu+cpu", "bandwidth unknown")
    share_gpu = placement.gpu_bytes / (placement.gpu_bytes + placement.ram_bytes)
    # The RAM share is read by the CPU's memory system, at the CPU's efficiency.
    seconds = [
        per_token * share_gpu / (gpu_bw * e) + per_token * (1 - share_gpu) / (ram_bw * c)
        for e, c in zip(EFFICIENCY, CPU_EFFICIENCY, strict=True)
    ]
    if cpu_work is not None:
        # The layers left in RAM are also computed by the CPU, at its own limits.
        cpu = cpu_decode_time(
            round(per_token * (1 - share_gpu)),
            ram_bw,
            cpu_work.share(1 - share_gpu),
            cap.cpu_cores,
            cap.cpu_clock_hz,
        )
        fast, slow = cpu.seconds()
        on_gpu = [per_token * share_gpu / (gpu_bw * e) for e in EFFICIENCY]
        seconds = [max(seconds[0], on_gpu[0] + slow), max(seconds[1], on_gpu[1] + fast)]
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


def _cpu_speed(cap: Capacity, ram_bw: int, per_token: int, work: CpuWork) -> Speed:
    cpu = cpu_decode_time(per_token, ram_bw, work, cap.cpu_cores, cap.cpu_clock_hz)
    fast, slow = cpu.seconds()
    low, high = 1 / slow, 1 / fast
    bandwidth, rate = _machine_parts(ram_bw, cap.cpu_cores, cap.cpu_clock_hz)
    memory = (
        f"{bandwidth}{per_token / 1e9:.2f} GB per token = {cpu.memory_s[0] * 1e3:.3g}-"
        f"{cpu.memory_s[1] * 1e3:.3g} ms"
    )
    if cpu.compute_s is None:
        why = (
            "the CPU's clock was not read"
            if work.weight_cycles is not None
            else "a block type of the file has no figure"
        )
        note = f"memory-bound: {memory}; the CPU's compute was not counted ({why})"
    else:
        note = (
            f"{'limited by the CPU' if cpu.compute_bound else 'memory-bound'}: memory {memory}; "
            f"weights {(work.weight_cycles or 0) / 1e9:.3g} G core cycles / {rate} = "
            f"{cpu.compute_s * 1e3:.3g} ms; + attention {cpu.attention_s * 1e3:.3g} ms"
        )
    note += f"; + {work.layers} layers x {_LAYER_MS} ms per token"
    return Speed(
        _sig((low + high) / 2),
        _sig(low),
        _sig(high),
        ram_bw,
        per_token,
        CPU_EFFICIENCY,
        "cpu",
        note,
    )


@lru_cache(maxsize=64)
def _machine_parts(ram_bw: int, cores: float | None, clock_hz: float | None) -> tuple[str, str]:
    """The CPU note's figures of the machine (its bandwidth, its cores and clock), written
    once per machine rather than once per result."""
    rate = f"({cores:g} cores x {(clock_hz or 0) / 1e9:.2f} GHz)" if cores else ""
    return f"{ram_bw / 1e9:.0f} GB/s x {CPU_EFFICIENCY[0]}-{CPU_EFFICIENCY[1]} / ", rate


# Share of peak compute prefill reaches on GPUs, and on CPUs for runtimes other than
# llama.cpp. Estimate.
PREFILL_EFFICIENCY = 0.5
# llama.cpp on a CPU: its kernels are 256-bit on every x86 CPU (see CPU_CYCLES_PER_WEIGHT), so
# the peak is cores x clock x 32 fp32 FLOP/cycle there (2 FMA units x 8 lanes x 2) and 16 on
# Arm (NEON, 4 lanes), whatever AVX-512 flags say. Its share of that peak by GGUF file type,
# calibrated with benchmarks/speed.py (128-token prompts on the 2-vCPU VM; repacked Q4_K runs
# int8 dot products, which beat the fp32 peak): Q4_K_M 1B 184 GFLOP/s of 166, 7B-wide 150;
# Q8_0 105-114; Q6_K 155; F16 108-116. Others: the 0.5 estimate.
CPU_PREFILL_FLOP_PER_CYCLE = {"x86": 32, "arm": 16}
CPU_PREFILL_EFFICIENCY = {
    "Q4_K_M": 0.9,
    "Q4_K_S": 0.9,
    "Q4_0": 0.9,
    "Q8_0": 0.6,
    "Q6_K": 0.8,
    "F16": 0.65,
}


def prefill_flops_per_token(active_params: int, layers: int, attn_width: int, context: int) -> int:
    """2 FLOPs per active weight, plus causal attention over half the context on average."""
    return 2 * active_params + 2 * layers * context * attn_width


# FLOP/s, efficiency, what it is (with the figures, when known), why none
_Peak = tuple[float | None, float, str, str]
_PEAKS: ByIdentity[_Peak] = ByIdentity(1024)


def _prefill_peak(
    cap: Capacity,
    gpu_side: bool,
    gpus: tuple[int, ...],
    split: str | None,
    gguf_type: str | None,
) -> _Peak:
    efficiency = PREFILL_EFFICIENCY
    slots = {s.index: s for s in cap.gpus}
    used = [slots[i] for i in gpus if i in slots]
    flops: float | None
    if gpu_side and used:
        known = [s.fp16_flops_per_s for s in used if s.fp16_flops_per_s]
        parallel = len(used) if split == "tensor-parallel" else 1
        flops = min(known) * parallel if len(known) == len(used) else None
        what, missing = "GPU fp16 tensor throughput (GPU table)", "no FP16 figure for this GPU"
    elif gguf_type is not None and cpu_isa(cap.arch) is not None:
        per_cycle = CPU_PREFILL_FLOP_PER_CYCLE[cpu_isa(cap.arch) or "x86"]
        rate = (cap.cpu_cores or 0) * (cap.cpu_clock_hz or 0)
        flops = round(rate * per_cycle) or None
        efficiency = CPU_PREFILL_EFFICIENCY.get(gguf_type, PREFILL_EFFICIENCY)
        what = f"llama.cpp CPU kernels: cores x clock x {per_cycle} FLOP/cycle ="
        missing = "the CPU's clock was not read"
    else:
        flops, what = cap.cpu_flops_per_s, "CPU cores x clock x FLOP/cycle"
        missing = "the CPU's clock was not read"
    if flops:  # the note's machine part, up to the model's own figure (with_prefill)
        what = f"{what} {flops / 1e12:.3g} TFLOP/s x {efficiency} /"
    return flops, efficiency, what, missing


def with_prefill(
    speed: Speed | None,
    placement: Placement,
    cap: Capacity,
    flops_per_token: int,
    context: int,
    gguf_type: str | None = None,
) -> Speed | None:
    """Add prompt-processing speed and time to first token (the whole context as prompt).
    `gguf_type`: the file type when llama.cpp runs it (its CPU kernels have their own peak)."""
    if speed is None:
        return None
    gpu_side = placement.verdict in ("gpu", "multi-gpu", "multi-node", "offload")
    # The peak depends on the machine and where it runs, not on the model: worked out once
    # per (machine, GPUs, split, file type) and kept (a scan asks ~1,400 times).
    key = (id(cap), gpu_side, placement.gpus, placement.split, gguf_type)
    hit = _PEAKS.entries.get(key)  # ByIdentity's fast path
    if hit is not None:
        flops, efficiency, what, missing = hit[1]
    else:
        peak = _prefill_peak(cap, gpu_side, placement.gpus, placement.split, gguf_type)
        flops, efficiency, what, missing = _PEAKS.keep(key, (cap,), peak)
    if not flops or flops_per_token <= 0:
        kept = speed.prefill_tokens_per_second, speed.time_to_first_token_s
        return _with_prefill(speed, *kept, speed.compute_flops_per_s, f"unknown: {missing}")
    tps = flops * efficiency / flops_per_token
    # `what` already ends with the peak and the efficiency (_prefill_peak): the same for
    # every model on this machine, so only the model's figure is written per result.
    note = f"{what} {flops_per_token / 1e9:.3g} GFLOP per token" + (
        " (GPU+RAM: the GPU's share only, an upper bound)" if placement.verdict == "offload" else ""
    )
    return _with_prefill(speed, _sig(tps), _sig(context / tps), round(flops), note)


def _with_prefill(
    s: Speed, tps: float | None, ttft: float | None, flops: int | None, note: str
) -> Speed:
    """``s`` with its prefill fields set: built in one call, positionally (a scan makes one
    per result; ``evolve`` would copy the fields through a dict, issue 15)."""
    return Speed(
        s.tokens_per_second,
        s.low,
        s.high,
        s.bandwidth_bytes_per_s,
        s.bytes_per_token,
        s.efficiency,
        s.device,
        s.note,
        tps,
        ttft,
        flops,
        note,
    )


# --- CPU decode in llama.cpp (ggml's CPU backend) ------------------------------------------
#
# Measured with benchmarks/speed.py on a 2-vCPU Xeon VM (tests/reference/cpu-speed-measured.toml,
# llama-cpp-python 0.3.36 / ggml 0.25.3, an AVX2 build). Every figure below that is not read
# from llama.cpp's code is calibrated there or an estimate, and says so.
#
# Share of canirun's all-core copy bandwidth that llama.cpp's decode reads at. Calibrated on
# that VM: 1B and 7B-wide files at Q4_K_M and Q8_0 read 8.6-12.8 GB/s against a 30 GB/s copy
# test (0.29-0.43), lower than GPUs' 0.5-0.6. A published 64-core EPYC 9554 run reaches
# 0.56-0.65 of its theoretical 460.8 GB/s (Phi-4 14B, Q4_K_M 28.7 and Q8_0 19.2 tok/s;
# ahelpme.com/?p=6685), so on servers this range errs slow, not fast.
CPU_EFFICIENCY = (0.3, 0.45)
# Core cycles per weight to decode one token (a matrix-vector product per weight matrix), by
# ggml block type. ggml's x86 kernels are 256-bit AVX2 code on every x86 CPU: with AVX-512
# they only gain VNNI dot products on the same 256-bit vectors (ggml/src/ggml-cpu/arch/x86/
# quants.c, mul_sum_us8_pairs_float), so one table serves AVX2 and AVX-512. Q4_0, Q4_K,
# IQ4_NL and MXFP4 are repacked at load into 8-row interleaved blocks with their own AVX2
# kernels; Q8_0, Q5_K and Q6_K are not (ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_
# type), and Q6_K is the one measured to be compute-bound on 2 cores.
CPU_CYCLES_PER_WEIGHT: dict[str, float] = {
    # calibrated: a 1B Q6_K file decodes at 8.1-8.4 tok/s on 2 cores x 2.6 GHz, below the
    # rate its bytes allow (0.45-0.5 cycles per weight)
    "Q6_K": 0.45,
    # calibrated (an upper bound): the 1B Q4_K_M file on one core, 10.4 tok/s, after its
    # Q6_K share (output head, half of attn_v/ffn_down) at the rate above
    "Q4_K": 0.1,
    # estimates: the other repacked 4-bit types like Q4_K; Q8_0 (no unpacking, memory-bound
    # on 2 cores in every run) a little above; unrepacked k-quants and legacy types like Q6_K
    "Q4_0": 0.1,
    "IQ4_NL": 0.1,
    "MXFP4": 0.1,
    "Q8_0": 0.15,
    "Q5_K": 0.45,
    "Q3_K": 0.45,
    "Q2_K": 0.45,
    "Q4_1": 0.3,
    "Q5_0": 0.3,
    "Q5_1": 0.3,
    # estimates until measured: F16 (F16C conversion + FMA), BF16 and F32 alike
    "F16": 0.25,
    "BF16": 0.25,
    "F32": 0.25,
}
# Arm cores run NEON kernels with their own repacks (Q4_0/Q4_K/Q5_K/Q6_K/Q8_0 with dotprod or
# i8mm); none were measured here. Assumed equal per cycle to x86: a published M1 Max core ran
# a 7B Q4_0 file at 199 ms per token on one thread (ggml-org/llama.cpp#34, 2023), about 0.1
# cycles per weight, so this errs slow.
ARM_SCALE = 1.0
# Core cycles per cached K or V element a query head reads (F16 KV cache, flash attention
# off), added to the weights' time: calibrated on the drop in decode speed from position 144
# to 1032 (1B and 7B widths, 0.4-0.55 after the KV bytes; noisy).
CPU_ATTENTION_CYCLES = 0.5
# Fixed cost per layer and token (graph build, a thread barrier per graph node): calibrated
# with a 256-wide 16-layer model whose matrix work is negligible (0.9-1.0 ms per token on 1-2
# threads). More threads make barriers dearer; not measured.
LAYER_OVERHEAD_S = 6e-5
_LAYER_MS = f"{LAYER_OVERHEAD_S * 1e3:.2g}"  # as the CPU note writes it
# Run-to-run spread of compute-bound decode (the range given around the compute time).
COMPUTE_SPREAD = 0.1


class CpuDecode(msgspec.Struct, frozen=True):
    """Seconds per decoded token on the CPU, by term, with the inputs behind them."""

    memory_s: tuple[float, float]  # bytes / (bandwidth x efficiency high, low)
    compute_s: float | None  # the weights' products; None: clock, cores or a type unknown
    attention_s: float  # attention over the cached context, added to the above
    overhead_s: float
    cores: float | None
    clock_hz: float | None

    @property
    def compute_bound(self) -> bool:
        return self.compute_s is not None and self.compute_s > self.memory_s[1]

    def seconds(self) -> tuple[float, float]:
        """(fastest, slowest) seconds per token."""
        fast, slow = self.memory_s
        if self.compute_s is not None:
            fast = max(fast, self.compute_s * (1 - COMPUTE_SPREAD))
            slow = max(slow, self.compute_s * (1 + COMPUTE_SPREAD))
        extra = self.attention_s + self.overhead_s
        return fast + extra, slow + extra


class CpuWork(msgspec.Struct, frozen=True):
    """llama.cpp's CPU work for one decoded token (decode_cycles, attention_cycles)."""

    weight_cycles: float | None  # None: a block type of the file has no figure
    attention_cycles: float
    layers: int

    def share(self, fraction: float) -> CpuWork:
        """The part of it done for `fraction` of the layers (the rest ran on a GPU)."""
        cycles = self.weight_cycles * fraction if self.weight_cycles is not None else None
        return CpuWork(cycles, self.attention_cycles * fraction, round(self.layers * fraction))


def decode_cycles(arch: Arch, gguf_arch: str, ftype: str, isa: str) -> float | None:
    """Core cycles one token's matrix-vector products take in llama.cpp, or None when a
    block type of the file has no figure. The shipped variants' x86 figures are
    precomputed in compiled.json (gguf.seed_layouts; a test keeps them equal to
    x86_decode_cycles); Arm scales them by ARM_SCALE."""
    from canirun.estimate import gguf

    found, cycles = gguf.seeded_cycles(arch, gguf_arch, ftype)
    if not found:
        cycles = x86_decode_cycles(arch, gguf_arch, ftype)
    if cycles is None:
        return None
    return cycles * (ARM_SCALE if isa == "arm" else 1.0)


@lru_cache(maxsize=1024)
def x86_decode_cycles(arch: Arch, gguf_arch: str, ftype: str) -> float | None:
    """decode_cycles on x86 worked out from the file's tensors. The token embedding is a
    row lookup, not a product (unless tied: then it is also the output head); routed
    experts count at their active share. Layers that the recipe treats alike share one
    tuple in gguf.typed_tensors and are costed once."""
    from canirun.estimate import gguf

    share = arch.experts_per_token / arch.experts if arch.experts and arch.experts_per_token else 1

    def cycles_of(typed: gguf.TypedLayer) -> float | None:
        cycles = 0.0
        for tensor, kind in typed:
            per_weight = CPU_CYCLES_PER_WEIGHT.get(kind)
            if per_weight is None:
                return None
            cycles += tensor.elements * (share if tensor.expert == "exps" else 1) * per_weight
        return cycles

    layers, edges = gguf.typed_tensors(arch, gguf_arch, ftype)
    costed: dict[int, float | None] = {}  # id of a shared layer tuple -> its cycles
    total = 0.0
    for typed in layers:
        if id(typed) not in costed:
            costed[id(typed)] = cycles_of(typed)
        cycles = costed[id(typed)]
        if cycles is None:
            return None
        total += cycles
    head = cycles_of(edges[-1:])  # the output head, or the tied embedding doubling as it
    if head is None:
        return None
    total += head
    return total


def attention_cycles(arch: Arch, position: int) -> float:
    """Core cycles of one token's attention over `position` cached tokens (flash attention
    off, llama.cpp's default before `-fa auto`): every query head reads a K and a V row
    of head_dim values per cached position (grouped KV heads are broadcast, not shared)."""
    elements = arch.layers * arch.heads * arch.effective_head_dim * 2 * position
    return elements * CPU_ATTENTION_CYCLES


def cpu_isa(arch: str | None) -> str | None:
    """The kernel family llama.cpp runs on this CPU: x86 (AVX2 class) or arm (NEON)."""
    return _ISA.get(arch or "")


_ISA = {"x86_64": "x86", "amd64": "x86", "arm64": "arm", "aarch64": "arm"}


def cpu_decode_time(
    bytes_per_token: int,
    bandwidth: int,
    work: CpuWork,
    cores: float | None,
    clock_hz: float | None,
) -> CpuDecode:
    """Seconds per token of llama.cpp's CPU decode. Pure.

    max(memory time, the weights' compute time) + attention time + a fixed cost per layer:
    the bytes at CPU_EFFICIENCY of the measured all-core bandwidth; the cycles (decode_cycles,
    attention_cycles) over usable cores x clock. Without a clock only the memory time counts.
    """
    memory = (
        bytes_per_token / (bandwidth * CPU_EFFICIENCY[1]),
        bytes_per_token / (bandwidth * CPU_EFFICIENCY[0]),
    )
    rate = cores * clock_hz if cores and clock_hz else None
    return CpuDecode(
        memory_s=memory,
        compute_s=work.weight_cycles / rate if rate and work.weight_cycles is not None else None,
        attention_s=work.attention_cycles / rate if rate else 0.0,
        overhead_s=work.layers * LAYER_OVERHEAD_S,
        cores=cores,
        clock_hz=clock_hz,
    )
