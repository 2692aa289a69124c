"""The "Faster here" advice is decided by the estimator and carried in the JSON summary."""

from __future__ import annotations

from canirun.estimate.faster import faster_option
from canirun.estimate.results import Result, Speed


def _result(precision: str, verdict: str, low: float | None, high: float | None) -> Result:
    speed = Speed(
        tokens_per_second=low, low=low, high=high, bandwidth_bytes_per_s=None, bytes_per_token=None
    )
    return Result(
        model_id="m",
        name="M",
        family="f",
        category="foundation",
        kind="llm",
        task="text-generation",
        access="open-weights",
        variant="1b",
        params=None,
        precision=precision,
        format="gguf",
        context_tokens=4096,
        verdict=verdict,  # type: ignore[arg-type]
        framework="llama.cpp",
        tokens_per_second=speed,
    )


def test_the_best_quality_among_clearly_faster_options() -> None:
    best = _result("F16", "gpu", 30.0, 36.0)
    q8 = _result("Q8_0", "gpu", 54.0, 65.0)
    q2 = _result("Q2_K", "gpu", 120.0, 140.0)  # fastest, but lower quality than Q8_0
    near = _result("Q6_K", "gpu", 35.0, 42.0)  # not faster at its low estimate
    found = faster_option(best, [best, q8, q2, near])
    assert found is not None
    assert (found.precision, found.low, found.high) == ("Q8_0", 54.0, 65.0)
    assert (found.best_low, found.best_high) == (30.0, 36.0)


def test_a_worse_placement_or_no_speed_gives_none() -> None:
    best = _result("F16", "gpu", 30.0, 36.0)
    on_cpu = _result("Q4_K_M", "cpu", 50.0, 60.0)
    assert faster_option(best, [best, on_cpu]) is None
    assert faster_option(_result("F16", "gpu", None, None), [on_cpu]) is None
