"""Failed authentications counted per client address, in a sliding window.

After ``limit`` failures within ``window`` seconds an address gets 429 until its oldest
failure leaves the window. Other addresses are not affected. Counts live in memory, per
instance: a determined attacker spreading over instances gets ``limit`` per instance.
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
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
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
            if len(self._failures) >= MAX_TRACKED:
                self._prune(now)
            failures = self._failures.setdefault(address or "", deque())
            self._expire(failures, now)
            failures.append(now)
            return len(failures) == self.limit

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()

    def _prune(self, now: float) -> None:
        for address in list(self._failures):
            self._expire(self._failures[address], now)
            if not self._failures[address]:
                del self._failures[address]
        if len(self._failures) >= MAX_TRACKED:
            self._failures.clear()
