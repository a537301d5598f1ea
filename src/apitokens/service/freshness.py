"""Cache freshness: this instance follows the database's change feed.

Every committed change (update, rotate, delete, leak revocation, create) is one entry of an
ordered feed (``storage.port.Changes``). ``Freshness`` keeps the position it has applied
and drops exactly the cached credentials of the tokens that changed. It learns of new
entries by polling (``apply``, the backstop and SQLite's only way) and, on PostgreSQL, at
once from ``NOTIFY`` (``notified``). When the position is lost (the feed was pruned past
it, or the database could not be read) it falls back to dropping everything and
distrusting the cache until it knows a position again.

It also keeps the filter of stored digests (``service.known``) current: digests that
changes made are added as they are applied, and the filter is rebuilt from the database
whenever the position is (re)started or the filter outgrows its size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from apitokens.service.cache import CredentialCache
from apitokens.service.known import KnownDigests
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.freshness")

BATCH = 1000


class Freshness:
    def __init__(
        self,
        store: Store,
        cache: CredentialCache,
        known: KnownDigests,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache = cache
        self.known = known
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._read_began = float("-inf")
        self.position: int | None = None

    def apply(self) -> None:
        """Read the feed after our position and drop what it names (blocking I/O).

        Never raises: an unreachable database makes the position lost instead.
        """
        with self._lock:
            began = self._monotonic()
            if self._apply():
                self._read_began = began

    def apply_since(self, moment: float) -> None:
        """Make sure a feed read that *began* after ``moment`` (monotonic) has completed.

        For a digest the filter does not know: it may have been made a moment ago on
        another instance, so the feed must be read after the request arrived. Concurrent
        callers share reads: one read that began after all of them arrived serves them all,
        so a flood of unknown values costs a read per batch, not a lookup per value.
        """
        if self._read_began > moment:
            return
        with self._lock:
            if self._read_began > moment:
                return
            began = self._monotonic()
            if self._apply():
                self._read_began = began

    def _apply(self) -> bool:
        try:
            self._catch_up()
        except Exception as error:
            if self.position is not None:
                log.warning("change feed unreadable", extra={"error": type(error).__name__})
            self._lose("unreachable")
            return False
        return True

    def notified(self, position: int | None) -> None:
        """A listener heard that the feed reached ``position`` (None: unknown)."""
        if position is None or self.position is None or position > self.position:
            self.apply()

    def lost(self) -> None:
        """Changes can no longer be heard: trust nothing until the feed is read again."""
        with self._lock:
            self._lose("unreachable")

    def _catch_up(self) -> None:
        if self.position is None or self.known.full:
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
                for change in changes:
                    if change.digest is not None:
                        self.known.add(change.digest)
                self._cache.drop({change.token_id for change in changes})
                self.position = changes[-1].position
            if len(changes) < BATCH:
                return

    def _restart(self) -> None:
        """Start over from the head: nothing cached before it can be trusted, and the
        filter of stored digests is rebuilt. The head is read first: a change committed
        meanwhile is then applied again later, which is harmless, and never missed."""
        with self._store.unit() as unit:
            head = unit.changes.head()
            self.known.rebuild(unit.tokens.digests(), unit.tokens.digest_count())
        self._cache.clear("lost")
        self.position = head
        self._cache.trusted = True

    def _lose(self, reason: str) -> None:
        self._cache.trusted = False
        if self.position is not None:
            self._cache.clear(reason)
        self.position = None
