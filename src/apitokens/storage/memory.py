"""An in-memory Store: the same contract as the SQL store, for fast tests and experiments.

One lock serialises units of work, and each unit works on a copy of the data that replaces
the shared state only when the unit commits, so a unit that raises leaves nothing behind
(the contract's all-or-nothing rule). Not for production: nothing survives the process.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from apitokens.domain.audit import AuditEvent
from apitokens.domain.events import PENDING, Delivery, Webhook
from apitokens.domain.tokens import Token, merge_ips
from apitokens.storage.port import Change, Position, Watch


@dataclass
class _Data:
    tokens: dict[str, Token] = field(default_factory=dict)
    secrets: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    changes: list[tuple[Change, datetime]] = field(default_factory=list)
    head: int = 0
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    usage_days: dict[tuple[str, date], int] = field(default_factory=dict)
    expiry_warnings: set[tuple[str, datetime, int]] = field(default_factory=set)


class MemoryTokens:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, token: Token, digest: str) -> None:
        if token.id in self._data.tokens or digest in self._data.secrets:
            raise ValueError("duplicate token id or digest")
        self._data.tokens[token.id] = token
        self._data.secrets[digest] = (token.id, None)

    def find(self, token_id: str, *, lock: bool = False) -> Token | None:
        return self._data.tokens.get(token_id)

    def find_by_digest(self, digest: str) -> tuple[Token, datetime | None] | None:
        found = self._data.secrets.get(digest)
        if found is None or found[0] not in self._data.tokens:
            return None
        return self._data.tokens[found[0]], found[1]

    def save(self, token: Token) -> None:
        if token.id not in self._data.tokens:
            raise LookupError(token.id)
        self._data.tokens[token.id] = token

    def replace_value(self, token_id: str, digest: str, now: datetime, old_until: datetime) -> None:
        for known, (owner, until) in list(self._data.secrets.items()):
            if owner == token_id and (until is None or until > old_until):
                self._data.secrets[known] = (owner, old_until)
        self._data.secrets[digest] = (token_id, None)

    def delete(self, token_id: str) -> bool:
        if self._data.tokens.pop(token_id, None) is None:
            return False
        for known, (owner, _until) in list(self._data.secrets.items()):
            if owner == token_id:
                del self._data.secrets[known]
        return True

    def page(self, limit: int, after: Position | None) -> Sequence[Token]:
        ordered = sorted(
            self._data.tokens.values(), key=lambda token: (token.created_at, token.id), reverse=True
        )
        if after is not None:
            ordered = [token for token in ordered if (token.created_at, token.id) < after]
        return ordered[:limit]

    def count(self) -> int:
        return len(self._data.tokens)

    def digests(self) -> Iterator[str]:
        return iter(list(self._data.secrets))

    def digest_count(self) -> int:
        return len(self._data.secrets)

    def record_usage(self, usage: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> None:
        for token_id, (at, ips) in usage.items():
            token = self._data.tokens.get(token_id)
            if token is None:
                continue
            if token.last_used_at is None or token.last_used_at < at:
                merged = merge_ips(ips, token.last_used_ips)
                token = replace(token, last_used_at=at, last_used_ips=tuple(merged))
            else:
                token = replace(token, last_used_ips=tuple(merge_ips(token.last_used_ips, ips)))
            self._data.tokens[token_id] = token

    def prune_values(self, ended_before: datetime) -> int:
        ended = [
            digest
            for digest, (_owner, until) in self._data.secrets.items()
            if until is not None and until < ended_before
        ]
        for digest in ended:
            del self._data.secrets[digest]
        return len(ended)


class MemoryChanges:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def record(self, token_id: str, at: datetime, digest: str | None = None) -> int:
        self._data.head += 1
        self._data.changes.append((Change(self._data.head, token_id, digest), at))
        return self._data.head

    def head(self) -> int:
        return self._data.head

    def since(self, position: int, limit: int) -> Sequence[Change] | None:
        if position > self._data.head:
            return None
        if position == self._data.head:
            return []
        later = [change for change, _at in self._data.changes if change.position > position]
        if not later or later[0].position != position + 1:
            return None
        return later[:limit]

    def prune(self, before: datetime) -> int:
        kept = [entry for entry in self._data.changes[:-1] if entry[1] >= before]
        kept.extend(self._data.changes[-1:])
        pruned = len(self._data.changes) - len(kept)
        self._data.changes = kept
        return pruned


class MemoryAuditLog:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, event: AuditEvent) -> None:
        self._data.events.append(replace(event, id=len(self._data.events) + 1))

    def page(
        self, limit: int, before: int | None, token_id: str | None, action: str | None
    ) -> Sequence[AuditEvent]:
        matching = [
            event
            for event in reversed(self._data.events)
            if (before is None or (event.id or 0) < before)
            and (token_id is None or event.token_id == token_id)
            and (action is None or event.action == action)
        ]
        return matching[:limit]


class MemoryWebhooks:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, webhook: Webhook) -> None:
        if webhook.id in self._data.webhooks:
            raise ValueError("duplicate webhook id")
        self._data.webhooks[webhook.id] = webhook

    def find(self, webhook_id: str) -> Webhook | None:
        return self._data.webhooks.get(webhook_id)

    def all(self) -> Sequence[Webhook]:
        return sorted(self._data.webhooks.values(), key=lambda hook: (hook.created_at, hook.id))

    def page(self, limit: int, after: Position | None) -> Sequence[Webhook]:
        ordered = list(reversed(self.all()))
        if after is not None:
            ordered = [hook for hook in ordered if (hook.created_at, hook.id) < after]
        return ordered[:limit]

    def delete(self, webhook_id: str) -> bool:
        if self._data.webhooks.pop(webhook_id, None) is None:
            return False
        for known, delivery in list(self._data.deliveries.items()):
            if delivery.webhook_id == webhook_id:
                del self._data.deliveries[known]
        return True

    def count(self) -> int:
        return len(self._data.webhooks)


class MemoryOutbox:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, delivery: Delivery) -> None:
        if delivery.id in self._data.deliveries:
            raise ValueError("duplicate delivery id")
        self._data.deliveries[delivery.id] = delivery

    def _due(self, now: datetime) -> list[Delivery]:
        due = [
            delivery
            for delivery in self._data.deliveries.values()
            if delivery.status == PENDING
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at <= now
        ]
        return sorted(due, key=lambda delivery: (delivery.next_attempt_at, delivery.id))

    def has_due(self, now: datetime) -> bool:
        return bool(self._due(now))

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> Sequence[Delivery]:
        claimed = self._due(now)[:limit]
        for delivery in claimed:
            self._data.deliveries[delivery.id] = replace(delivery, next_attempt_at=lease_until)
        return claimed

    def save(self, delivery: Delivery) -> None:
        if delivery.id in self._data.deliveries:
            self._data.deliveries[delivery.id] = delivery

    def page(self, webhook_id: str, limit: int, after: Position | None) -> Sequence[Delivery]:
        ordered = sorted(
            (d for d in self._data.deliveries.values() if d.webhook_id == webhook_id),
            key=lambda delivery: (delivery.created_at, delivery.id),
            reverse=True,
        )
        if after is not None:
            ordered = [d for d in ordered if (d.created_at, d.id) < after]
        return ordered[:limit]


class MemoryUsageDays:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, counts: Mapping[tuple[str, date], int]) -> None:
        for key, requests in counts.items():
            if key[0] in self._data.tokens:
                self._data.usage_days[key] = self._data.usage_days.get(key, 0) + requests

    def between(self, token_id: str, first: date, last: date) -> Mapping[date, int]:
        if token_id not in self._data.tokens:
            return {}  # the rows of a deleted token went with it
        return {
            day: requests
            for (owner, day), requests in self._data.usage_days.items()
            if owner == token_id and first <= day <= last
        }


class MemoryExpiryWarnings:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def unwarned(self, threshold_seconds: int, until: datetime, limit: int) -> Sequence[Token]:
        def warned(token: Token) -> bool:
            return any(
                owner == token.id and at == token.expires_at and threshold <= threshold_seconds
                for owner, at, threshold in self._data.expiry_warnings
            )

        due = [
            token
            for token in self._data.tokens.values()
            if token.expires_at is not None and token.expires_at <= until and not warned(token)
        ]
        return sorted(due, key=lambda token: (token.expires_at, token.id))[:limit]

    def mark(self, token_id: str, expires_at: datetime, threshold_seconds: int) -> bool:
        key = (token_id, expires_at, threshold_seconds)
        if token_id not in self._data.tokens or key in self._data.expiry_warnings:
            return False
        self._data.expiry_warnings.add(key)
        return True


@dataclass
class MemoryUnit:
    tokens: MemoryTokens
    audit: MemoryAuditLog
    changes: MemoryChanges
    webhooks: MemoryWebhooks
    outbox: MemoryOutbox
    usage_days: MemoryUsageDays
    expiry_warnings: MemoryExpiryWarnings


class MemoryStore:
    """A ``Store`` in a dict. Thread-safe; one unit of work at a time."""

    def __init__(self) -> None:
        self._data = _Data()
        self._lock = threading.RLock()

    @contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        with self._lock:
            working = copy.copy(self._data)
            working.tokens = dict(working.tokens)
            working.secrets = dict(working.secrets)
            working.events = list(working.events)
            working.changes = list(working.changes)
            working.webhooks = dict(working.webhooks)
            working.deliveries = dict(working.deliveries)
            working.usage_days = dict(working.usage_days)
            working.expiry_warnings = set(working.expiry_warnings)
            yield MemoryUnit(
                MemoryTokens(working),
                MemoryAuditLog(working),
                MemoryChanges(working),
                MemoryWebhooks(working),
                MemoryOutbox(working),
                MemoryUsageDays(working),
                MemoryExpiryWarnings(working),
            )
            self._data = working  # reached only when the block raised nothing

    def ping(self) -> None:
        return None

    def prepare(self) -> None:
        return None

    def watch(
        self, on_change: Callable[[int | None], None], on_lost: Callable[[], None]
    ) -> Watch | None:
        return None  # one process: the feed poll sees every change

    @property
    def description(self) -> str:
        return "memory (nothing is kept when the process ends)"

    def close(self) -> None:
        return None
