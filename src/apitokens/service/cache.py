"""An in-process cache of verified credentials, so the hot path needs no database.

Keyed by value digest. ``drop`` removes the entries of the tokens a change touched (the
change feed says which, see ``service.freshness``); ``clear`` removes everything, for when
the feed position is lost or the database cannot be read. Each entry also lives at most
``ttl`` seconds, and the least recently used entry makes room when the cache is full.

``generation`` guards a race: a lookup that read the database before a drop may not put
what it read (possibly stale) into the cache after the drop. ``trusted`` is False until
the feed position is known, and whenever it is lost: entries are then not used at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from apitokens.domain.tokens import Credential

MAX_ENTRIES = 100_000


class CredentialCache:
    def __init__(
        self,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_clear: Callable[[str], None] | None = None,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._on_clear = on_clear
        self._entries: OrderedDict[str, tuple[Credential, float]] = OrderedDict()
        self._by_token: dict[str, set[str]] = {}
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self.generation = 0
        self.trusted = False

    def get(self, digest: str) -> Credential | None:
        """The cached credential of ``digest``, or None (absent, expired, or not trusted)."""
        if not self.trusted:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        credential, stored = entry
        if self._clock() - stored > self._ttl:
            with self._lock:
                self._remove(digest)
            return None
        try:  # noqa: SIM105 - suppress() would build a context manager on every read
            self._entries.move_to_end(digest)
        except KeyError:  # removed meanwhile: still a valid answer
            pass
        return credential

    def put(self, credential: Credential, generation: int) -> None:
        """Cache ``credential`` unless something was dropped since ``generation`` was read."""
        with self._lock:
            if generation != self.generation:
                return
            while len(self._entries) >= self._max:
                self._remove(next(iter(self._entries)))
            digest = credential.digest
            self._entries[digest] = (credential, self._clock())
            self._by_token.setdefault(credential.token.id, set()).add(digest)

    def drop(self, token_ids: Iterable[str]) -> int:
        """Remove every entry of these tokens; returns how many entries went."""
        removed = 0
        with self._lock:
            self.generation += 1
            for token_id in token_ids:
                for digest in self._by_token.pop(token_id, ()):
                    removed += self._entries.pop(digest, None) is not None
        if removed and self._on_clear is not None:
            self._on_clear("change")
        return removed

    def clear(self, reason: str = "change") -> None:
        """Drop every entry. ``reason`` (``lost``, ``unreachable``, ...) is counted."""
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self._by_token.clear()
        if self._on_clear is not None:
            self._on_clear(reason)

    def _remove(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        digests = self._by_token.get(entry[0].token.id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_token[entry[0].token.id]

    def __len__(self) -> int:
        return len(self._entries)
