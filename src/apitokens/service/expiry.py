"""Expiry warnings: ``api_token.expiring`` once per threshold, ``api_token.expired`` once.

A background loop calls ``run_once``. Each warning is recorded (token, its ``expiresAt``,
threshold) in the same unit of work as the event, and only the unit that records it first
emits the event: several instances scanning at once send each warning once. A token whose
expiry is changed is warned about again for the new time. A token first seen already past
several thresholds (made with a short lifetime, or found after downtime) gets one event,
for the nearest threshold, not one per threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from apitokens.domain import events
from apitokens.domain.clock import Clock
from apitokens.service.events import EventSink
from apitokens.storage.port import Store

EXPIRED_LEVEL = 0
"""The threshold recorded for ``api_token.expired`` (expiry itself)."""


class ExpiryScanner:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sink: EventSink,
        thresholds: Sequence[int],
        batch: int = 200,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sink = sink
        self.levels = sorted({EXPIRED_LEVEL, *thresholds})
        self.batch = batch

    def run_once(self) -> int:
        """Emit the warnings due now; return how many were emitted by this instance."""
        now = self.clock.now()
        emitted = 0
        for level in self.levels:  # nearest first: it covers the farther ones
            until = now + timedelta(seconds=level)
            with self.store.unit() as unit:  # a read first: most scans find nothing to do
                if not unit.expiry_warnings.unwarned(level, until, 1):
                    continue
            while True:
                with self.store.unit(write=True) as unit:
                    due = unit.expiry_warnings.unwarned(level, until, self.batch)
                    for token in due:
                        assert token.expires_at is not None
                        first = unit.expiry_warnings.mark(token.id, token.expires_at, level)
                        for farther in self.levels:
                            if farther > level:
                                unit.expiry_warnings.mark(token.id, token.expires_at, farther)
                        if not first:
                            continue  # another instance warned meanwhile
                        emitted += 1
                        if level == EXPIRED_LEVEL:
                            self.sink.emit(unit, events.EXPIRED, token)
                        else:
                            extra = {"thresholdSeconds": level}
                            self.sink.emit(unit, events.EXPIRING, token, extra=extra)
                if len(due) < self.batch:
                    break
        return emitted
