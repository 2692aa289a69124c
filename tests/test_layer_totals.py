"""placement.exact_totals: the offload search reads the layers' running totals from the
weights' own totals and the rounded KV share (issue 15). They must be the totals that
rounding every layer and adding them up gives (layer_sums), or an offload would move."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canirun.estimate import placement
from canirun.estimate.placement import Need, exact_totals, largest_layer, layer_sums
from canirun.estimate.runtime import Overheads

_NONE = Overheads(0, 0, 0, 0, 1.0, ())


def _need(weights: tuple[int, ...], per_kv: float) -> Need:
    return Need(sum(weights), round(per_kv * len(weights)), _NONE, weights, per_kv)


@given(
    st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=96),
    st.floats(min_value=0, max_value=2**33, allow_nan=False),
)
def test_the_view_reads_the_written_totals(weights: list[int], per_kv: float) -> None:
    need = _need(tuple(weights), per_kv)
    written = layer_sums(need)[1]
    view = exact_totals(need)
    assert len(view) == len(written)
    assert [view[i] for i in range(len(view))] == list(written)


@given(
    st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=32),
    st.integers(min_value=0, max_value=2**30),
    st.sampled_from([0.5, 0.4995, 0.5004, 0.0, 0.999, 0.001]),
)
def test_kv_shares_near_a_half_round_as_written(
    weights: list[int], whole: int, fraction: float
) -> None:
    need = _need(tuple(weights), whole + fraction)
    written = layer_sums(need)[1]
    view = exact_totals(need)
    assert [view[i] for i in range(len(view))] == list(written)


def test_a_kv_share_at_a_half_is_written_out() -> None:
    """Half-way shares round each layer to even: the view would be wrong, so it is not used."""
    need = _need((3, 4, 5, 6), 2.5)
    assert isinstance(exact_totals(need), tuple)
    assert list(exact_totals(need)) == [0, 6, 12, 20, 28]  # 6 (5.5), 6 (6.5), 8 (7.5), 8
    assert not isinstance(exact_totals(_need((3, 4, 5, 6), 2.25)), tuple)


def test_huge_layers_are_written_out() -> None:
    assert isinstance(exact_totals(_need((placement._EXACT_BELOW,), 1.25)), tuple)


@given(
    st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=64),
    st.floats(min_value=0, max_value=2**33, allow_nan=False),
)
def test_the_largest_layer_is_the_written_one(weights: list[int], per_kv: float) -> None:
    need = _need(tuple(weights), per_kv)
    assert largest_layer(need) == max(layer_sums(need)[0])


def test_a_need_without_layers_has_no_largest() -> None:
    assert largest_layer(Need(1, 0, _NONE)) is None
