"""The value digests that exist, as a Bloom filter: unknown values cost no database query.

Anyone can make a well-formed value (the checksum is public), so without this every made-up
value would be one database lookup, and a flood of them from many addresses would load the
database and slow every caller. The filter answers "certainly not stored" for almost every
unknown digest (false positives ~1 % at capacity, then a lookup decides), and never
"not stored" for a stored one.

It is built from every stored digest when the instance starts (and again when its change
feed position is lost, or it outgrows its capacity), and digests made since arrive through
the change feed (create and rotate record theirs) or at once on the instance that made
them. Deleted digests stay in the filter until the next rebuild: that only costs a lookup.

A digest is SHA-256 output, already uniform: the bit positions are taken from its bytes
directly, with no further hashing.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

HASHES = 7
"""Bits set per digest: optimal for ~10 bits per entry (false positives ~0.8 %)."""
BITS_PER_ENTRY = 10
MIN_CAPACITY = 1024


class KnownDigests:
    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        self._lock = threading.Lock()
        self.ready = False
        self._reset(capacity)

    def _reset(self, capacity: int) -> None:
        self.capacity = max(MIN_CAPACITY, capacity)
        self._size = self.capacity * BITS_PER_ENTRY
        self._bits = bytearray(math.ceil(self._size / 8))
        self.count = 0

    def rebuild(self, digests: Iterable[str], expected: int) -> None:
        """Start over from ``digests`` (about ``expected`` of them), sized for growth."""
        fresh = KnownDigests(max(MIN_CAPACITY, expected * 2))
        for digest in digests:
            fresh._add(digest)
        with self._lock:
            self.capacity, self._size = fresh.capacity, fresh._size
            self._bits, self.count = fresh._bits, fresh.count
            self.ready = True

    def add(self, digest: str) -> None:
        with self._lock:
            self._add(digest)

    def might_contain(self, digest: str) -> bool:
        """False: certainly not stored. True: stored, or a false positive. True until built."""
        if not self.ready:
            return True
        bits = self._bits
        return all(
            bits[position >> 3] & (1 << (position & 7)) for position in self._positions(digest)
        )

    @property
    def full(self) -> bool:
        """More entries than it was sized for: false positives grow; rebuild it."""
        return self.count > self.capacity

    def _add(self, digest: str) -> None:
        for position in self._positions(digest):
            self._bits[position >> 3] |= 1 << (position & 7)
        self.count += 1

    def _positions(self, digest: str) -> list[int]:
        # 64 hex characters = 256 bits: seven disjoint 32-bit slices (8 hex characters each).
        size = self._size
        return [int(digest[start : start + 8], 16) % size for start in range(0, 8 * HASHES, 8)]
