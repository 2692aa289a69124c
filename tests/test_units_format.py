"""units.format_bytes and format_gib: the figures every breakdown line shows. format_bytes
picks its unit by thresholds; it must write what dividing by 1024 step by step writes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canirun.units import GIB, format_bytes, format_gib


def _stepwise(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_format_bytes_is_the_stepwise_division(n: int) -> None:
    assert format_bytes(n) == _stepwise(n)


def test_format_bytes_at_each_boundary() -> None:
    for k in range(0, 64):
        for n in (2**k - 1, 2**k, 2**k + 1, -(2**k)):
            assert format_bytes(n) == _stepwise(n), n
    assert format_bytes(None) == "?"
    assert [format_bytes(n) for n in (1023, 1024, 5 * 2**30)] == ["1023 B", "1.0 KiB", "5.0 GiB"]


def test_format_gib() -> None:
    assert format_gib(None) == "?"
    assert format_gib(3 * GIB // 2) == "1.5 GiB"
    assert format_gib(3 * GIB // 2, digits=2) == "1.50 GiB"
    assert format_gib(0, digits=0) == "0 GiB"
