"""The largest-context search answers exactly as the bisection it replaced (issue 15).

``largest_kept`` guesses where the headroom runs out instead of bisecting [1, max]; the
answer must stay the bisection's. Kept here as the reference: the bisection canirun ran
before. Every search of real scans (every catalog variant, several hosts and workloads)
runs both, on the same probes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canirun.cli import app
from canirun.estimate import rate
from canirun.estimate.context_search import GUESSES, Probe, largest_kept
from tests.golden_cases import hardware_files


def bisect_kept(keeps: Callable[[int], bool], top: int) -> int:
    """canirun's search before issue 15, as it was in rate.max_context."""
    lo, hi = 1, top
    if keeps(hi):
        return hi
    while hi - lo > 1:  # keeps(lo) holds, keeps(hi) does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if keeps(mid) else (lo, mid)
    return lo


def _linear(budget: int, base: int, per_token: int, kind: str = "cpu") -> Callable[[int], Probe]:
    def probe(ctx: int) -> Probe:
        size = base + per_token * ctx
        kept = size <= budget
        return Probe(kept, kind, budget - size if kept else None, size)

    return probe


def _counted(probe: Callable[[int], Probe]) -> tuple[Callable[[int], Probe], list[int]]:
    seen: list[int] = []

    def counted(ctx: int) -> Probe:
        seen.append(ctx)
        return probe(ctx)

    return counted, seen


@pytest.mark.parametrize("answer", [1, 2, 3, 4095, 4096, 4097, 77_777, 131_070, 131_071, 131_072])
def test_a_linear_need_is_found_in_a_few_probes(answer: int) -> None:
    per_token = 131_072
    linear = _linear(10**9 + per_token * answer + 5, 10**9, per_token)
    probe, seen = _counted(linear)
    assert largest_kept(probe, 131_072, 4096) == answer
    assert bisect_kept(lambda c: linear(c).kept, 131_072) == answer
    if answer > 4096:  # from the rated context up: the headroom says where
        assert len(seen) <= 6, seen


def test_only_the_predicate_decides() -> None:
    # Headroom that lies (it says there is room for much more, or much less): the guesses
    # miss, the answer does not.
    for factor in (0.01, 0.3, 3.0, 100.0):
        for answer in (5, 999, 4096, 60_001, 131_071):

            def probe(ctx: int, answer: int = answer, factor: float = factor) -> Probe:
                kept = ctx <= answer
                room = round((answer - ctx) * 1000 * factor) if kept else None
                return Probe(kept, "gpu", room, ctx * 1000)

            counted, seen = _counted(probe)
            assert largest_kept(counted, 131_072, 4096) == answer
            assert len(seen) <= 1 + GUESSES + 17  # the top, the guesses, then a bisection
            assert len(seen) == len(set(seen))  # never the same context twice


def test_no_headroom_bisects() -> None:
    def probe(ctx: int) -> Probe:
        return Probe(ctx <= 12_345, "offload", None, ctx)

    assert largest_kept(probe, 65_536, 4096) == bisect_kept(lambda c: probe(c).kept, 65_536)


def test_nothing_kept_answers_one_like_the_bisection() -> None:
    def probe(ctx: int) -> Probe:
        return Probe(False, "too-big", None, ctx)

    assert largest_kept(probe, 32_768, 4096) == bisect_kept(lambda c: False, 32_768) == 1
    assert largest_kept(probe, 1, 4096) == 1


HOSTS = {
    "laptop CPU": ("--hardware", "@laptop"),
    "workstation": ("--hardware", "@workstation"),
    "RTX 4090 + 64 GB": ("--hardware", "@workstation", "--gpu", "RTX 4090", "--ram", "64GB"),
    "2x A100 80GB": ("--hardware", "@workstation", "--gpu", "2x A100 80GB"),
    "RTX 3060 + 16 GB": ("--hardware", "@laptop", "--gpu", "RTX 3060", "--ram", "16GB"),
    "M2 Max": ("--hardware", "@mac", "--gpu", "M2 Max"),
}
WORKLOADS = {
    "default": (),
    "q8_0 x4": ("--kv-cache", "q8_0", "--sequences", "4"),
    "32k q4_0 extended": ("--ctx", "32768", "--kv-cache", "q4_0", "--extended-context"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return hardware_files(Path(tmp_path_factory.mktemp("ctx-hw")))


@pytest.mark.parametrize("host", list(HOSTS))
def test_every_catalog_search_answers_as_the_bisection(
    host: str, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[tuple[int, int, int]] = []  # (answer, probes, bisection's probes)
    differ: list[tuple[int, int, int]] = []

    def both(probe: Callable[[int], Probe], top: int, start: int) -> int:
        counted, seen = _counted(probe)
        got = largest_kept(counted, top, start)
        old, want = _counted(probe)
        expected = bisect_kept(lambda c: old(c).kept, top)
        searched.append((got, len(seen), len(want)))
        if got != expected:
            differ.append((top, got, expected))
        return got

    monkeypatch.setattr(rate, "largest_kept", both)
    for extra in WORKLOADS.values():
        args = ["scan", "--json", "--ram-bandwidth", "off", *HOSTS[host], *extra]
        result = CliRunner().invoke(app, [files.get(a, a) for a in args])
        assert result.exit_code == 0, result.output
    assert differ == []
    # The comparison is not empty, and it saves probes where the maximum does not fit.
    searching = [s for s in searched if s[2] > 1]
    assert len(searched) > 150
    assert sum(s[1] for s in searching) < sum(s[2] for s in searching)
