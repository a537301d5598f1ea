"""Cache freshness: this instance follows the database's change feed.

Every committed change (update, rotate, delete, leak revocation, create) is one entry of an
ordered feed (``storage.port.Changes``). ``Freshness`` keeps the position it has applied
and drops exactly the cached credentials of the tokens that changed. It learns of new
entries by polling (``apply``, the backstop and SQLite's only way) and, on PostgreSQL, at
once from ``NOTIFY`` (``notified``). When the position is lost (the feed was pruned past
it, or the database could not be read) it falls back to dropping everything and
distrusting the cache until it knows a position again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from apitokens.service.cache import CredentialCache
from apitokens.storage.port import Change, Store

log = logging.getLogger("apitokens.freshness")

BATCH = 1000


class Freshness:
    def __init__(
        self,
        store: Store,
        cache: CredentialCache,
        on_changes: Callable[[Iterable[Change]], None] | None = None,
    ) -> None:
        self._store = store
        self._cache = cache
        self._on_changes = on_changes
        self._lock = threading.Lock()
        self.position: int | None = None

    def apply(self) -> None:
        """Read the feed after our position and drop what it names (blocking I/O).

        Never raises: an unreachable database makes the position lost instead.
        """
        with self._lock:
            try:
                self._catch_up()
            except Exception as error:
                if self.position is not None:
                    log.warning("change feed unreadable", extra={"error": type(error).__name__})
                self._lose("unreachable")

    def notified(self, position: int | None) -> None:
        """A listener heard that the feed reached ``position`` (None: unknown)."""
        if position is None or self.position is None or position > self.position:
            self.apply()

    def lost(self) -> None:
        """Changes can no longer be heard: trust nothing until the feed is read again."""
        with self._lock:
            self._lose("unreachable")

    def _catch_up(self) -> None:
        if self.position is None:
            self._restart()
            return
        while True:
            with self._store.unit() as unit:
                changes = unit.changes.since(self.position, BATCH)
            if changes is None:
                log.info("change feed position lost; dropping every cached credential")
                self._restart()
                return
            if changes:
                self._cache.drop({change.token_id for change in changes})
                if self._on_changes is not None:
                    self._on_changes(changes)
                self.position = changes[-1].position
            if len(changes) < BATCH:
                return

    def _restart(self) -> None:
        """Start over from the head: nothing cached before it can be trusted."""
        with self._store.unit() as unit:
            head = unit.changes.head()
        self._cache.clear("lost")
        self.position = head
        self._cache.trusted = True

    def _lose(self, reason: str) -> None:
        self._cache.trusted = False
        if self.position is not None:
            self._cache.clear(reason)
        self.position = None
