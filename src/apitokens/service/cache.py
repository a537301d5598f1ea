"""An in-process cache of verified credentials, so the hot path needs no database.

Entries are dropped wholesale whenever the database's cache epoch moves (any instance's
update, rotation or deletion moves it), and each entry also lives at most ``ttl``
seconds. ``generation`` guards a race: a lookup that started before a drop may not put
what it read (possibly stale) into the cache after the drop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from apitokens.domain.tokens import Credential

MAX_ENTRIES = 100_000


class CredentialCache:
    def __init__(
        self,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_clear: Callable[[str], None] | None = None,
    ) -> None:
        self._on_clear = on_clear
        self._entries: dict[str, tuple[Credential, float]] = {}
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self.generation = 0
        self.epoch: int | None = None

    def get(self, digest: str) -> Credential | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        credential, stored = entry
        if self._clock() - stored > self._ttl:
            self._entries.pop(digest, None)
            return None
        return credential

    def put(self, credential: Credential, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[credential.digest] = (credential, self._clock())

    def clear(self, reason: str = "change") -> None:
        """Drop every entry. ``reason`` (``change``, ``epoch``, ``unreachable``) is counted."""
        with self._lock:
            self.generation += 1
            self._entries.clear()
        if self._on_clear is not None:
            self._on_clear(reason)

    def observe_epoch(self, epoch: int) -> bool:
        """Record the database's epoch; drop everything if it moved. True if it moved."""
        if epoch == self.epoch:
            return False
        self.clear("epoch")
        self.epoch = epoch
        return True

    def __len__(self) -> int:
        return len(self._entries)
