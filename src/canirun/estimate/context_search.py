"""The largest context that keeps a verdict, in a few probes (issue 15).

``rate.max_context`` asks one question of a context: does the variant keep its verdict
there? Each probe builds the need and places it. Bisecting [1, the model's maximum] took
about 17 probes a variant whose maximum does not fit; this takes about 5 for the same answer.

The need grows almost linearly with the context (the KV cache exactly, compute buffers
piecewise), so a placement that fits says, through its headroom, about how many more tokens
fit: a Newton step (headroom / bytes per token, the slope taken from the two last fits or,
first, from the growth of the need's total, doubled to land short) falls on or just below
the crossing, and the next token up is the miss that ends the search. The answer is proven
the bisection's way: every probe falls inside the bracket (``lo`` kept, ``hi`` not;
``lo = 1`` assumed kept, as the bisection did) and the search ends at ``hi - lo == 1``. A
guess that cannot be trusted (it points past a miss, or the fits have no headroom) gives
way to a bisection step, and so do all after ``GUESSES`` probes. So for a predicate that is
monotone in the context the answer is the bisection's whatever the guesses were: a bad
guess costs probes, never the result. tests/test_context_search.py checks both searches
give the same answer on every catalog variant over several hosts and workloads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Probe(NamedTuple):
    """What one context gives: whether the verdict is kept, and numbers to guess with."""

    kept: bool
    # The placement's kind (its verdict, layers on the GPU...): two headrooms are compared
    # for a slope only within one kind.
    kind: object
    headroom: int | None  # bytes left where it fits (None: not kept, or not told)
    size: int  # the need's total over every pool: it grows with the context


# Guessed probes before plain bisection takes over: a guess that misses costs probes, never
# the answer, and this bounds what misses can cost.
GUESSES = 12


def largest_kept(probe: Callable[[int], Probe], top: int, start: int) -> int:
    """The largest context in [1, top] that ``probe`` keeps, the way a bisection of
    [1, top] answers (1 when none is kept); ``start``: a context likely kept (the one rated).
    """
    hi_got = probe(top)
    if hi_got.kept:
        return top
    lo, hi = 1, top  # probe(lo) kept (lo = 1 assumed), probe(hi) not
    lo_got: Probe | None = None
    before: tuple[int, Probe] | None = None  # the kept probe before lo's
    x, guesses = min(max(start, lo + 1), hi - 1), 0
    while hi - lo > 1:
        got = probe(x)
        if got.kept:
            if lo_got is not None:
                before = (lo, lo_got)
            lo, lo_got = x, got
        else:
            hi, hi_got = x, got
        guesses += 1
        guess = None
        if guesses < GUESSES and lo_got is not None and lo_got.headroom is not None:
            guess = _guess(lo, lo_got, before, hi, hi_got, after_miss=not got.kept)
        x = (lo + hi) // 2 if guess is None else min(max(guess, lo + 1), hi - 1)
    return lo


def _guess(
    lo: int, kept: Probe, before: tuple[int, Probe] | None, hi: int, missed: Probe, after_miss: bool
) -> int | None:
    """Where the headroom of ``kept`` (at ``lo``) runs out; None when that cannot be told.

    The slope, in bytes per token: the drop in headroom since the kept probe before, within
    one kind of placement (exact while the need grows linearly); else the growth of the
    need's total over the bracket, doubled so that the step lands short rather than past.
    Just after a miss the crossing lies below it: interpolated on that growth.
    """
    room = kept.headroom or 0
    grown = max(missed.size - kept.size, 1)
    if after_miss:  # more room than the need grew by: this headroom is not what ran out
        return lo + int((hi - lo) * room / grown) if room < grown else None
    slope = 0.0
    if before is not None and before[1].kind == kept.kind and before[1].headroom:
        slope = (before[1].headroom - room) / (lo - before[0])
    if slope <= 0:
        slope = 2 * grown / (hi - lo)
    guess = lo + int(room / slope)
    return guess if guess < hi else None  # past a miss: this headroom is not what runs out
