"""Bounded caches of what the hot paths render again and again (token bodies, identity
headers, query parses), each entry reused only while what it was made from is unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
A = TypeVar("A")


class Kept(Generic[K, V]):
    """At most ``limit`` entries by key; past it the oldest is dropped.

    ``get(key, stamp, make, source)`` returns the value kept for ``key`` while its stamp
    compares equal to ``stamp``, else ``make(source)``, kept with ``stamp``. A stamp of the
    fields a value was made from is never stale after a change, and comparing it costs
    little where it matters: a tuple of the very same objects is equal without comparing
    them. Other threads may read and write meanwhile (bodies are rendered on worker threads
    too): every step is one dict operation, and losing a race only makes a value again or
    drops one entry fewer.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[K, tuple[object, V]] = {}

    def get(self, key: K, stamp: object, make: Callable[[A], V], source: A) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        value = make(source)
        self.put(key, stamp, value)
        return value

    def find(self, key: K) -> V | None:
        """The value kept for ``key`` whatever its stamp, or None."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, stamp: object, value: V) -> None:
        if len(self._entries) >= self.limit:
            with contextlib.suppress(StopIteration, RuntimeError, KeyError):
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (stamp, value)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._entries))
