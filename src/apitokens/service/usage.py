"""``lastUsedAt`` without a database write per request.

Each successful authentication is noted in memory; a background task writes the
coalesced usage every ``flush_seconds`` and once more at a clean shutdown. The write only
ever moves ``lastUsedAt`` forward, so several instances flushing in any order agree.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import date, datetime

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import merge_ips
from apitokens.service.events import EventSink, NoEvents
from apitokens.storage.port import Store

Pending = dict[str, tuple[datetime, tuple[str, ...]]]
DayCounts = dict[tuple[str, date], int]


class UsageRecorder:
    def __init__(self, store: Store, events: EventSink | None = None) -> None:
        self._store = store
        self._events_sink: EventSink = events or NoEvents()
        self._days: DayCounts = {}  # successful authentications per (token, UTC day)
        self._pending: Pending = {}
        self._writing: Pending = {}  # taken by a flush, not yet committed: still visible
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def note(self, token_id: str, at: datetime, ip: str | None) -> None:
        day = (token_id, at.date())
        with self._lock:
            self._days[day] = self._days.get(day, 0) + 1
            previous = self._pending.get(token_id)
            ips: tuple[str, ...] = (ip,) if ip else ()
            if previous is not None:
                earlier = previous[1]
                # No address, or the newest one again (the usual case): the list stays.
                same = not ips or earlier[:1] == ips
                ips = earlier if same else tuple(merge_ips(ips, earlier))
                at = max(at, previous[0])
            self._pending[token_id] = (at, ips)

    def event(self, event: AuditEvent) -> None:
        """Queue an audit event noticed on the request path; written with the next flush."""
        with self._lock:
            self._events.append(event)

    def pending(self, token_id: str) -> tuple[datetime | None, tuple[str, ...]]:
        """The newest use not yet committed to the database (a flush in progress counts:
        otherwise a read during a flush would show ``lastUsedAt`` moving back)."""
        with self._lock:
            pending = self._pending.get(token_id)
            writing = self._writing.get(token_id)
        if pending is None:
            return writing or (None, ())
        return writing if writing is not None and writing[0] > pending[0] else pending

    def snapshot(self) -> Pending:
        """``pending`` for every token at once (a copy)."""
        with self._lock:
            merged = dict(self._writing)
            for token_id, entry in self._pending.items():
                earlier = merged.get(token_id)
                if earlier is None or entry[0] >= earlier[0]:
                    merged[token_id] = entry
        return merged

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._pending.pop(token_id, None)
            self._days = {key: n for key, n in self._days.items() if key[0] != token_id}

    def day_counts(self, token_id: str) -> dict[date, int]:
        """Uses per UTC day not yet written. Hold ``steady()`` across this call and the
        read of the written counts, so that a flush cannot count them twice or not at all."""
        with self._lock:
            return {day: n for (owner, day), n in self._days.items() if owner == token_id}

    def steady(self) -> AbstractContextManager[bool]:
        """No flush commits while this is held."""
        return self._flush_lock

    def flush(self) -> int:
        """Write what is pending; on failure keep it for the next attempt. Returns the count."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                events, self._events = self._events, []
                days, self._days = self._days, {}
                self._writing = batch
            if not batch and not events:
                return 0
            try:
                with self._store.unit(write=True) as unit:
                    unit.tokens.record_usage(batch)
                    unit.usage_days.add(days)
                    for event in events:
                        unit.audit.add(event)
                        self._events_sink.noticed(unit, event)
            except Exception:
                self._restore(batch, events)
                with self._lock:
                    for key, n in days.items():
                        self._days[key] = self._days.get(key, 0) + n
                raise
            finally:
                with self._lock:
                    self._writing = {}
            return len(batch) + len(events)

    def _restore(self, batch: Pending, events: list[AuditEvent]) -> None:
        with self._lock:
            self._events[:0] = events
            for token_id, (at, ips) in batch.items():
                newer = self._pending.get(token_id)
                if newer is None:
                    self._pending[token_id] = (at, ips)
                else:
                    self._pending[token_id] = (max(at, newer[0]), tuple(merge_ips(newer[1], ips)))
