"""CPU decode and prefill estimates against llama.cpp runs measured on a real machine.

The reference runs (tests/reference/cpu-speed-measured.toml) were timed with
benchmarks/speed.py; each is re-estimated here with canirun's own functions and the
machine's recorded bandwidth, cores and clock, and must land within 0.7-1.3 of what was
measured (measured / estimate).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from canirun.catalog.schema import Arch
from canirun.estimate.capacity import Capacity
from canirun.estimate.gguf import gguf_weight_bytes
from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.params import active_decoder_params
from canirun.estimate.placement import Placement
from canirun.estimate.speed import (
    CpuWork,
    attention_cycles,
    cpu_decode_time,
    decode_cycles,
    decode_speed,
    prefill_flops_per_token,
    with_prefill,
)
from tests.llamacpp_peak import arch_of

REFERENCE = tomllib.loads(
    (Path(__file__).parent / "reference" / "cpu-speed-measured.toml").read_text()
)
MACHINE = REFERENCE["machine"]
# Calibration rows (the "tiny" model, whose time is all fixed cost) are not predictions.
RUNS = [r for r in REFERENCE["run"] if r["shape"] != "tiny"]


def _arch(row: dict) -> Arch:
    """The measured file's shape, as the memory measurements read theirs."""
    return dataclasses.replace(arch_of(row), tied_embeddings=row["tied"], gguf_arch="llama")


def _cap(threads: int, bandwidth: float | None = None, clock: float | None = None) -> Capacity:
    return Capacity(
        gpus=(),
        ram_usable_bytes=None,
        ram_total_bytes=None,
        ram_bandwidth_bytes_per_s=round((bandwidth or MACHINE["bandwidth_gb_s"]) * 1e9),
        disk_free_bytes=None,
        disk_path=None,
        os="linux",
        arch="x86_64",
        docker=None,
        cpu_cores=threads,
        cpu_clock_hz=round((clock or MACHINE["clock_mhz"]) * 1e6),
    )


def _decode_estimate(row: dict, cap: Capacity) -> float:
    arch = _arch(row)
    weights = gguf_weight_bytes(arch, "llama", row["type"])
    work = CpuWork(
        decode_cycles(arch, "llama", row["type"], "x86"),
        attention_cycles(arch, row["position"]),
        arch.layers,
    )
    kv = kv_cache_bytes(arch, row["position"])
    speed = decode_speed(Placement("cpu"), cap, weights, kv, work)
    assert speed is not None
    assert speed.tokens_per_second is not None
    return speed.tokens_per_second


def _prefill_estimate(row: dict, cap: Capacity) -> float:
    arch = _arch(row)
    weights = gguf_weight_bytes(arch, "llama", row["type"])
    work = CpuWork(decode_cycles(arch, "llama", row["type"], "x86"), 0, arch.layers)
    base = decode_speed(Placement("cpu"), cap, weights, 0, work)
    per_token = prefill_flops_per_token(
        active_decoder_params(arch), arch.layers, arch.heads * arch.head_dim, row["prompt"]
    )
    speed = with_prefill(base, Placement("cpu"), cap, per_token, row["prompt"], row["type"])
    assert speed is not None
    assert speed.prefill_tokens_per_second is not None
    return speed.prefill_tokens_per_second


def _name(row: dict) -> str:
    where = f"@{row['position']}" if row["phase"] == "decode" else f"p{row['prompt']}"
    fa = "-fa" if row["flash_attn"] else ""
    return (
        f"{row['shape']}:{row['layers']}-{row['type']}-t{row['threads']}-{row['phase']}{where}{fa}"
    )


@pytest.mark.parametrize("row", RUNS, ids=_name)
def test_estimate_is_within_30_percent_of_the_measured_run(row: dict) -> None:
    cap = _cap(row["threads"])
    estimate = (
        _decode_estimate(row, cap) if row["phase"] == "decode" else _prefill_estimate(row, cap)
    )
    ratio = row["tokens_per_s"] / estimate
    assert 0.7 <= ratio <= 1.3, f"measured {row['tokens_per_s']} vs estimated {estimate:.3g}"


def test_the_reference_covers_both_phases_shapes_and_types() -> None:
    decode = {(r["shape"], r["type"]) for r in RUNS if r["phase"] == "decode"}
    assert {("llama-3.2-1b", "Q4_K_M"), ("llama-3.2-1b", "Q8_0")} <= decode
    assert {("mistral-7b", "Q4_K_M"), ("mistral-7b", "Q8_0")} <= decode
    assert any(r["position"] > 1000 for r in RUNS if r["phase"] == "decode")
    assert any(r["phase"] == "prefill" for r in RUNS)


def test_a_file_with_more_work_per_weight_is_not_estimated_faster() -> None:
    arch = _arch(next(r for r in RUNS if r["shape"] == "llama-3.2-1b"))
    q4, q6 = (decode_cycles(arch, "llama", t, "x86") for t in ("Q4_K_M", "Q6_K"))
    assert q4 is not None
    assert q6 is not None
    assert q6 > q4


def test_one_core_is_limited_by_compute_and_the_note_says_so() -> None:
    row = next(r for r in RUNS if r["shape"] == "llama-3.2-1b" and r["type"] == "Q6_K")
    arch = _arch(row)
    work = CpuWork(decode_cycles(arch, "llama", "Q6_K", "x86"), 0, arch.layers)
    speed = decode_speed(
        Placement("cpu"), _cap(1), gguf_weight_bytes(arch, "llama", "Q6_K"), 0, work
    )
    assert speed is not None
    assert speed.note is not None
    assert speed.note.startswith("limited by the CPU")
    assert "1 cores x 2.60 GHz" in speed.note


def test_without_a_clock_only_memory_counts_and_the_note_says_so() -> None:
    cap = replace(_cap(2), cpu_clock_hz=None)
    work = CpuWork(1e9, 1e8, 16)
    speed = decode_speed(Placement("cpu"), cap, 10**9, 0, work)
    assert speed is not None
    assert speed.note is not None
    assert "compute was not counted (the CPU's clock was not read)" in speed.note
    # Memory only: 1 GB at 0.3-0.45 of 30 GB/s, plus 16 layers' fixed cost.
    assert speed.low is not None
    assert speed.high is not None
    assert speed.low == pytest.approx(1 / (1 / 9 + 16 * 6e-5), rel=0.01)
    assert speed.high == pytest.approx(1 / (1 / 13.5 + 16 * 6e-5), rel=0.01)


@given(
    cores=st.integers(1, 256),
    more=st.integers(1, 8),
    bandwidth=st.floats(1e9, 1e12),
    cycles=st.floats(1e6, 1e11),
    attention=st.floats(0, 1e10),
)
def test_more_cores_or_bandwidth_never_make_decode_slower(
    cores: int, more: int, bandwidth: float, cycles: float, attention: float
) -> None:
    work = CpuWork(cycles, attention, 32)
    base = cpu_decode_time(4 * 10**9, round(bandwidth), work, cores, 3e9).seconds()
    wider = cpu_decode_time(4 * 10**9, round(bandwidth), work, cores + more, 3e9).seconds()
    faster = cpu_decode_time(4 * 10**9, round(bandwidth * 2), work, cores, 3e9).seconds()
    assert wider[0] <= base[0]
    assert wider[1] <= base[1]
    assert faster[0] <= base[0]
    assert faster[1] <= base[1]
    assert base[0] <= base[1]


def test_llama_cpp_prefill_uses_256_bit_peak_even_with_avx512_flags() -> None:
    # ggml's x86 quantised kernels are 256-bit with or without AVX-512: 32 FLOP/cycle, not
    # the 64 that cpu_flops gives an AVX-512 CPU (PyTorch's peak).
    row = next(r for r in RUNS if r["phase"] == "prefill" and r["type"] == "Q4_K_M")
    cap = _cap(2)
    avx512 = replace(cap, cpu_flops_per_s=round(2 * 2.6e9 * 64))
    assert _prefill_estimate(row, avx512) == _prefill_estimate(row, cap)
    arch = _arch(row)
    per_token = prefill_flops_per_token(
        active_decoder_params(arch), arch.layers, arch.heads * arch.head_dim, row["prompt"]
    )
    base = decode_speed(Placement("cpu"), avx512, 10**9, 0, CpuWork(1e9, 0, arch.layers))
    torch = with_prefill(base, Placement("cpu"), avx512, per_token, row["prompt"])
    assert torch is not None
    assert torch.prefill_tokens_per_second is not None
    assert torch.prefill_tokens_per_second > _prefill_estimate(row, avx512)


def test_decode_cycles_equal_the_per_tensor_sum_for_catalog_files() -> None:
    # decode_cycles costs alike layers once; it must match costing every tensor of the recipe.
    from canirun.catalog.loader import load_catalog
    from canirun.estimate.gguf import has_output_tensor, tensor_types
    from canirun.estimate.speed import CPU_CYCLES_PER_WEIGHT

    checked = 0
    archs = [
        v.arch for m in load_catalog().models for v in m.variants if v.arch and v.arch.gguf_arch
    ]
    # Every MoE (its layer patterns) and every 4th dense model, to stay fast.
    for index, arch in enumerate(archs):
        if not arch.experts and index % 4:
            continue
        share = arch.experts_per_token / arch.experts if arch.experts_per_token else 1
        tied = not has_output_tensor(arch, arch.gguf_arch)
        for ftype in ("Q4_K_M", "Q5_K_M"):
            expected = sum(
                t.elements * (share if t.expert == "exps" else 1) * CPU_CYCLES_PER_WEIGHT[k]
                for t, k in tensor_types(arch, arch.gguf_arch, ftype)
                if t.category != "token_embd" or tied
            )
            got = decode_cycles(arch, arch.gguf_arch, ftype, "x86")
            assert got == pytest.approx(expected, rel=1e-9), (arch, ftype)
            checked += 1
    assert checked > 40
