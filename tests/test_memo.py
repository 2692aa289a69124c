"""estimate.memo.ByIdentity: answers kept per record identity, by ``get`` or by the fast
path a hot caller takes (``entries`` read directly, ``keep`` on a miss)."""

from __future__ import annotations

from canirun.estimate.memo import ByIdentity


class Rec:
    """A record that is not hashable by value, as catalog records are not."""

    __hash__ = None  # type: ignore[assignment]


def test_get_works_out_each_answer_once_per_records_and_extra() -> None:
    memo: ByIdentity[int] = ByIdentity()
    a, b = Rec(), Rec()
    calls: list[str] = []

    def answer(tag: str, value: int) -> int:
        calls.append(tag)
        return value

    assert memo.get((a,), "x", lambda: answer("a", 1)) == 1
    assert memo.get((a,), "x", lambda: answer("again", 2)) == 1
    assert memo.get((b,), "x", lambda: answer("b", 3)) == 3
    assert memo.get((a, b), None, lambda: answer("ab", 4)) == 4
    assert calls == ["a", "b", "ab"]


def test_the_fast_path_keeps_its_records_alive_and_stays_bounded() -> None:
    memo: ByIdentity[str] = ByIdentity(size=2)
    a = Rec()
    key = (id(a), "k")
    assert memo.entries.get(key) is None
    assert memo.keep(key, (a,), "value") == "value"
    hit = memo.entries.get(key)
    assert hit is not None
    assert hit[1] == "value"
    assert hit[0][0] is a  # the record lives as long as the entry: its id stays its own
    memo.keep((1,), (), "b")
    memo.keep((2,), (), "c")  # over the bound: the memo starts afresh, then keeps this
    assert list(memo.entries) == [(2,)]
    memo.clear()
    assert memo.entries == {}


def test_a_scan_fills_no_memo_past_a_quarter() -> None:
    """A memo that fills up is cleared mid-scan and everything is worked out again: the
    shipped catalog must leave each one room to grow fourfold (the catalog is about to
    double), on a machine with a GPU and on one without."""
    import sys

    from canirun.estimate import memo
    from canirun.estimate.rate import Options
    from canirun.evaluate import scan_report
    from tests.test_estimate import CATALOG, GIB, gpu, host

    assert len(list(CATALOG.variants())) > 150  # the shipped catalog, not a sample

    for machine in (host(gpus=(gpu(24 * GIB),)), host()):
        memos = [
            (f"{module.__name__}.{name}", value)
            for module in list(sys.modules.values())
            if getattr(module, "__name__", "").startswith("canirun.")
            for name, value in list(vars(module).items())
            if isinstance(value, memo.ByIdentity)
        ]
        for _, m in memos:
            m.clear()
        scan_report(machine, CATALOG, Options())
        full = {name: len(m.entries) for name, m in memos if len(m.entries) * 4 > m._size}
        assert not full, full
