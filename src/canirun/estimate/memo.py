"""Memoising the estimator's pure functions over catalog records.

A scan asks the same questions many times (every framework, every precision, every step
of the largest-context search). The answers depend on catalog records — pydantic models
whose list fields make them unhashable — and on small hashable values. A record hashable
by value (a Workload) is passed as a record too, when the same object comes back: its
identity is cheaper to hash than its fields. ``ByIdentity``
keys on the records' identities. Each entry keeps its records alive, so while the entry
exists no other object can take one of their ids: a key that matches names the very same
records, and a lookup needs no identity check of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


# The memos kept per variant (weights, KV caches, decoder parts) hold up to ~18 entries per
# catalog variant after one scan, ~3,200 for today's ~180 variants on a GPU machine. A memo
# that fills up starts afresh in the middle of a scan and works everything out again, so the
# default leaves room for a catalog four times larger (tests/test_memo.py checks it); in a
# long-lived process (the Python API) it bounds what the entries keep alive to a few scans.
DEFAULT_SIZE = 1 << 14


class ByIdentity(Generic[T]):
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._entries: dict[Hashable, tuple[tuple[object, ...], T]] = {}
        self.entries = self._entries  # the same dict, for the fast path below

    def get(self, records: tuple[object, ...], extra: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s value, worked out once per (records, extra)."""
        # Spelt out for the usual sizes: about twice as fast as (*map(id, records), extra),
        # and a scan looks up some 30,000 keys.
        n = len(records)
        if n == 1:
            key: tuple[object, ...] = (id(records[0]), extra)
        elif n == 2:
            key = (id(records[0]), id(records[1]), extra)
        elif n == 3:
            key = (id(records[0]), id(records[1]), id(records[2]), extra)
        else:
            key = (*map(id, records), extra)
        entry = self._entries.get(key)
        if entry is not None:
            return entry[1]
        value = compute()
        if len(self._entries) >= self._size:
            self._entries.clear()  # bounded; a long-lived process (the API) starts afresh
        self._entries[key] = (records, value)
        return value

    # The fast path, for the few lookups a scan makes thousands of times with nearly every
    # answer already known (issue 15): the caller builds its own key from the records' ids
    # and small values, reads ``entries`` itself (no call and no closure, about twice as
    # fast as ``get``) and ``keep``s what it worked out on a miss. A memo is used one way
    # or the other, never both (their keys differ).
    def keep(self, key: Hashable, records: tuple[object, ...], value: T) -> T:
        """Remember ``value`` under ``key``, which holds the ids of ``records`` (kept
        alive with it, so that no other object takes their ids); returns ``value``."""
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (records, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
