"""A quicker option than the best-quality way to run a variant, when there clearly is one.

Decided here rather than in the terminal view so that JSON readers get the same advice:
the summary's ``faster`` field, which `canirun check` prints as "Faster here".
"""

from __future__ import annotations

from canirun.estimate.precision import PRECISIONS
from canirun.estimate.results import Faster, Result, rank


def _quality(r: Result) -> int:
    p = PRECISIONS.get(r.precision or "")
    return p.quality if p else 0


def speed_of(r: Result) -> tuple[float, float] | None:
    """A result's decode range (low, high), or None where either end is unknown."""
    tps = r.tokens_per_second
    if tps is None or tps.low is None or tps.high is None:
        return None
    return tps.low, tps.high


def faster_option(best: Result, results: list[Result]) -> Faster | None:
    """Among results placed as well as `best` or better, those faster even at their low
    estimate than `best` at its high one; of those the highest quality (not simply the
    fastest, which would often be Q2_K). None when `best` has no speed or none is faster.
    """
    best_speed = speed_of(best)
    if best_speed is None:
        return None
    quicker = [
        (speed, r)
        for r in results
        if (speed := speed_of(r)) is not None
        and speed[0] > best_speed[1]
        and rank(r.verdict) <= rank(best.verdict)
    ]
    if not quicker:
        return None
    (low, high), top = max(quicker, key=lambda item: _quality(item[1]))
    return Faster(
        precision=top.precision,
        framework=top.framework,
        low=low,
        high=high,
        best_low=best_speed[0],
        best_high=best_speed[1],
    )
