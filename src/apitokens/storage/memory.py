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
from datetime import datetime

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import Token, merge_ips
from apitokens.storage.port import Change, Position, Watch


@dataclass
class _Data:
    tokens: dict[str, Token] = field(default_factory=dict)
    secrets: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    events: list[AuditEvent] = field(default_factory=list)
    changes: list[tuple[Change, datetime]] = field(default_factory=list)
    head: int = 0


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


@dataclass
class MemoryUnit:
    tokens: MemoryTokens
    audit: MemoryAuditLog
    changes: MemoryChanges


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
            yield MemoryUnit(MemoryTokens(working), MemoryAuditLog(working), MemoryChanges(working))
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
