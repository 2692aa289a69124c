"""One gate rule (runs_at) decides `--require`; the report carries it to JUnit."""

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
