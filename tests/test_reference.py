"""canirun's estimates against published figures (tests/reference/*.toml).

Targets (issue 4): weights within 3 % of real files, totals never more than 5 %
below a published requirement (an under-estimate is a crash for the user).
Observed errors and their explanations are printed by benchmarks/accuracy.py.
"""

from __future__ import annotations

import statistics

import pytest

from tests.reference_data import Comparison, all_comparisons

COMPARISONS = all_comparisons()


def of(kind: str) -> list[Comparison]:
    found = [c for c in COMPARISONS if c.kind == kind and c.error is not None]
    assert found, f"no {kind} rows in tests/reference"
    return found


@pytest.mark.parametrize("c", of("gguf_file"), ids=lambda c: c.label)
def test_gguf_size_never_far_below_the_real_file(c: Comparison) -> None:
    # Under 3 % low everywhere; a few old Q2_K/Q3_K files from earlier llama.cpp
    # recipes are smaller than today's recipe, so over-estimates go up to 6 %.
    assert c.error is not None
    assert -0.03 <= c.error <= 0.06, f"{c.label}: {c.error:+.1%} ({c.source})"


def test_gguf_sizes_are_accurate_overall() -> None:
    errors = [abs(c.error) for c in of("gguf_file") if c.error is not None]
    assert len(errors) >= 200
    assert statistics.median(errors) < 0.005
    within = sum(e <= 0.03 for e in errors) / len(errors)
    assert within >= 0.97


@pytest.mark.parametrize("c", of("weights_file"), ids=lambda c: c.label)
def test_16_and_32_bit_weights_match_published_files(c: Comparison) -> None:
    # Falcon 7B's checkpoint stores its tied output head twice (-4.1 % on disk,
    # exact in memory); Whisper's parameter counts are rounded in its README.
    assert c.error is not None
    assert abs(c.error) <= 0.05, f"{c.label}: {c.error:+.1%} ({c.source})"


@pytest.mark.parametrize("c", of("mlx_file"), ids=lambda c: c.label)
def test_mlx_quantised_weights_match_mlx_community_files(c: Comparison) -> None:
    # 4 bits + a 16-bit scale and bias per 64 weights, embeddings and head included.
    assert c.error is not None
    assert abs(c.error) <= 0.01, f"{c.label}: {c.error:+.1%} ({c.source})"


@pytest.mark.parametrize("c", of("kv_cache"), ids=lambda c: c.label)
def test_kv_cache_matches_what_llama_cpp_prints(c: Comparison) -> None:
    assert c.error is not None
    assert abs(c.error) < 0.001


@pytest.mark.parametrize("c", of("runtime"), ids=lambda c: c.label)
def test_never_below_a_published_runtime_figure(c: Comparison) -> None:
    assert c.error is not None
    assert c.error >= -0.05, f"{c.label}: {c.error:+.1%} below the published figure ({c.source})"


@pytest.mark.parametrize("c", of("quantized_footprint"), ids=lambda c: c.label)
def test_quantized_weights_match_measured_loads(c: Comparison) -> None:
    # bitsandbytes 4-bit counts 0.5 B per weight (its quantization state is not a parameter);
    # canirun's int4 plans GPTQ's 4.156 bits, so it is up to ~2 % above there. GPTQ's own
    # load counts g_idx and qzeros, which canirun folds into the same figure (-0.1 %).
    assert c.error is not None
    assert -0.01 <= c.error <= 0.03, f"{c.label}: {c.error:+.2%} ({c.source})"
