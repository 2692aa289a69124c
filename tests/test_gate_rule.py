"""One gate rule serves `check --require` and JUnit: runs_at."""

from __future__ import annotations

import pytest

from canirun.estimate.results import VERDICTS, runs_at
from canirun.options import REQUIRE_LEVELS


@pytest.mark.parametrize("verdict", VERDICTS)
@pytest.mark.parametrize("level", [None, *REQUIRE_LEVELS])
def test_runs_at_orders_placements(verdict: str, level: str | None) -> None:
    order = ["gpu", "multi-gpu", "multi-node", "offload", "cpu"]
    expected = verdict in order and (level is None or order.index(verdict) <= order.index(level))
    assert runs_at(verdict, level) is expected


def test_junit_and_check_agree() -> None:
    from canirun.options import Gate, meets
    from canirun.output.ci_formats import meets_level
    from tests.test_faster import _result

    for verdict in VERDICTS:
        for level in REQUIRE_LEVELS:
            summary_like = type("S", (), {"verdict": verdict})()
            result = _result("Q4_K_M", verdict, None, None)
            assert meets([result], Gate(level, None, False)) == meets_level(summary_like, level)  # type: ignore[arg-type]
