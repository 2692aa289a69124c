"""canirun's llama.cpp formulas against buffers llama.cpp itself reported.

tests/reference/llamacpp-measured.toml was produced by scripts/measure_llamacpp.py
(random-weight GGUF files with published architectures' shapes, loaded by
llama-cpp-python on the CPU backend).
"""

from __future__ import annotations

import statistics
import tomllib
from pathlib import Path

import pytest

from canirun.estimate.kv import kv_cache_bytes
from canirun.estimate.runtime import llamacpp_compute_buffer
from tests.llamacpp_peak import arch_of

MEASURED = tomllib.loads(
    (Path(__file__).parent / "reference" / "llamacpp-measured.toml").read_text()
)
MIB = 2**20


def compute_error(row: dict[str, object]) -> float:
    from canirun.estimate import runtime

    arch = arch_of(row)
    old = runtime.LLAMA_CPP_UBATCH
    runtime.LLAMA_CPP_UBATCH = int(row["n_ubatch"])  # type: ignore[call-overload]
    try:
        est = llamacpp_compute_buffer(arch, int(row["n_ctx"]), 1, bool(row["flash_attn"]))  # type: ignore[call-overload]
    finally:
        runtime.LLAMA_CPP_UBATCH = old
    est -= arch.vocab * 4  # the output buffer is reported apart from the compute buffer
    return est / (float(row["size_mib"]) * MIB) - 1  # type: ignore[arg-type]


ROWS = MEASURED["compute_buffer"]


def test_compute_buffer_formula_fits_every_measurement() -> None:
    errors = [compute_error(r) for r in ROWS]
    assert len(errors) >= 100
    assert statistics.median(abs(e) for e in errors) < 0.01
    assert min(errors) > -0.10  # never more than 10 % low (9 MiB at 512 tokens, llama-2 widths)
    assert max(errors) < 0.10


@pytest.mark.parametrize(
    "row", MEASURED["kv_cache"], ids=lambda r: f"{r['shape']}-{r['n_ctx']}-{r['type_k']}"
)
def test_kv_cache_formula_matches_what_llama_cpp_prints(row: dict[str, object]) -> None:
    if "error" in row:
        assert "requires flash_attn" in str(row["error"])  # canirun turns flash attention on
        return
    arch = arch_of(row)
    if row["type_k"] != row["type_v"]:
        pytest.skip("mixed K/V types are not a canirun option")
    est = kv_cache_bytes(arch, int(row["n_ctx"]), cache_type=str(row["type_k"]))  # type: ignore[call-overload]
    assert est / (float(row["size_mib"]) * MIB) == pytest.approx(1, abs=0.01)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "row",
    [r for r in MEASURED["rss"] if not r["use_mmap"] or r["precision"] in ("F16", "Q8_0")],
    ids=lambda r: f"{r['precision']}-mmap{int(r['use_mmap'])}-fa{int(r['flash_attn'])}",
)
def test_cpu_estimate_covers_resident_memory_at_a_full_context(row: dict[str, object]) -> None:
    """canirun's CPU need against VmRSS once the whole context is filled.

    Rows with mmap on and repacked quant types are left out: their extra resident
    memory is the mapped file kept in page cache, which the kernel can reclaim.
    """
    from canirun.estimate.results import Workload
    from canirun.estimate.runtime import llm_overheads

    arch = arch_of(row)
    framework = _llama_cpp()
    wl = Workload(context_tokens=int(row["n_ctx"]), flash_attention=bool(row["flash_attn"]))  # type: ignore[call-overload]
    over = llm_overheads(framework, arch, wl, "ggml")
    weights = float(row["model_buffers_mib"]) * MIB  # type: ignore[arg-type]
    est = weights + kv_cache_bytes(arch, wl.context_tokens) + over.cpu_compute + over.cpu_process
    measured = float(row["rss_full_ctx_mib"]) * MIB  # type: ignore[arg-type]
    assert est >= measured * 0.97, f"{est / MIB:.0f} MiB planned, {measured / MIB:.0f} MiB resident"
    assert est <= measured * 1.35


def _llama_cpp():  # type: ignore[no-untyped-def]
    from canirun.catalog import load_catalog

    return load_catalog(user_dir=False).framework_by_id["llama.cpp"]


def _peak_comparisons():  # type: ignore[no-untyped-def]
    from tests.llamacpp_peak import compare, peak_rows

    return [compare(r) for r in peak_rows()]


def test_peak_rss_set_covers_the_issue_17_conditions() -> None:
    from tests.llamacpp_peak import peak_rows

    rows = peak_rows()
    assert {r["n_ctx"] for r in rows} >= {512, 2048, 4096, 8192, 32768}
    # 32k with flash attention on (the default) and off
    assert {r["flash_attn"] for r in rows if r["n_ctx"] == 32768} == {False, True}
    assert {r["flash_attn"] for r in rows} == {False, True}
    assert {r["kv_type"] for r in rows} == {"f16", "q8_0"}
    assert {r["precision"] for r in rows} >= {"Q4_K_M", "Q8_0"}
    assert any(r["kv_heads"] == r["heads"] for r in rows)  # multi-head attention
    assert any(r["vocab"] >= 256000 for r in rows)


def test_cpu_estimate_is_tight_on_peak_resident_memory_with_the_context_filled() -> None:
    """Issue 17's target: every load 0 ... +5 % of peak RSS, the median at most +3 %."""
    comps = _peak_comparisons()
    bad = [f"{c.label}: {c.error:+.1%}" for c in comps if not 0 <= c.error <= 0.05]
    assert not bad, bad
    assert statistics.median(c.error for c in comps) <= 0.03
