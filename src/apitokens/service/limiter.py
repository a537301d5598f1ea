"""Failed authentications counted per client address, in a sliding window.

After ``limit`` failures within ``window`` seconds an address gets 429 until its oldest
failure leaves the window. Other addresses are not affected. Counts live in memory, per
instance: a determined attacker spreading over instances gets ``limit`` per instance.

Memory is bounded (``max_tracked`` keys). When full, expired entries go first, then the
keys with the *fewest* failures: an attacker spraying from many source addresses (an IPv6
/64 has plenty) evicts only other one-off addresses, never the record of a real offender
that is at its limit. The same class counts rotations per token (``service.tokens``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from apitokens.domain.errors import TooManyFailures

MAX_TRACKED = 50_000


class FailureLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_tracked = max_tracked
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """Raise TooManyFailures if the address is over its budget."""
        if not self._failures:
            return
        failures = self._failures.get(address or "")
        if failures is None or len(failures) < self.limit:
            return
        now = self._clock()
        with self._lock:
            self._expire(failures, now)
            if len(failures) >= self.limit:
                retry = failures[0] + self.window - now
                raise TooManyFailures(max(1, math.ceil(retry)))

    def fail(self, address: str | None) -> bool:
        """Count one failure. True when this failure makes the address reach the limit."""
        now = self._clock()
        with self._lock:
            if address not in self._failures and len(self._failures) >= self._max_tracked:
                self._make_room(now)
            failures = self._failures.setdefault(address or "", deque())
            self._expire(failures, now)
            failures.append(now)
            return len(failures) == self.limit

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()

    def _make_room(self, now: float) -> None:
        """Drop expired keys; if that is not enough, the quarter with the fewest failures."""
        for address in list(self._failures):
            self._expire(self._failures[address], now)
            if not self._failures[address]:
                del self._failures[address]
        if len(self._failures) < self._max_tracked:
            return
        by_count = sorted(self._failures, key=lambda address: len(self._failures[address]))
        for address in by_count[: max(1, len(by_count) // 4)]:
            del self._failures[address]

    def __len__(self) -> int:
        return len(self._failures)
