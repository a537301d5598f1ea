"""The storage port: what the service needs from a database, and nothing more.

A ``Store`` opens units of work. A unit of work commits only when its block ends without
an exception and rolls back otherwise, so a failed request never leaves half a change.
Repositories never commit on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import Token

Position = tuple[datetime, str]
"""A place in the token listing: (createdAt, id) of the last token of the previous page."""


class Tokens(Protocol):
    def add(self, token: Token, digest: str) -> None:
        """Store a new token and its current value's digest."""

    def find(self, token_id: str, *, lock: bool = False) -> Token | None:
        """The token, or None if there is none with that id. ``lock`` holds the row
        until the unit of work ends, so concurrent changes of one token run one at a time."""

    def find_by_digest(self, digest: str) -> tuple[Token, datetime | None] | None:
        """The token a value digest belongs to, beside the digest's ``valid_until``
        (None for the current value; a time for a rotated-out value), or None."""

    def save(self, token: Token) -> None:
        """Write the token's changeable fields (name, permissions, blocks, times)."""

    def replace_value(self, token_id: str, digest: str, now: datetime, old_until: datetime) -> None:
        """Make ``digest`` the current value; earlier values stay valid until ``old_until``
        (values already due to end sooner keep their earlier end)."""

    def delete(self, token_id: str) -> bool:
        """Remove the token and all its value digests; False if it did not exist."""

    def page(self, limit: int, after: Position | None) -> Sequence[Token]:
        """Up to ``limit`` tokens, newest first, strictly after ``after``."""

    def count(self) -> int: ...

    def digests(self) -> Iterator[str]:
        """Every stored value digest (current and rotated-out), streamed."""

    def digest_count(self) -> int: ...

    def record_usage(self, usage: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> None:
        """Move ``lastUsedAt`` forward (never back) and merge the recent addresses."""

    def prune_values(self, ended_before: datetime) -> int:
        """Remove digests of rotated-out values whose grace ended before ``ended_before``
        (they can never authenticate again); returns how many were removed."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: the token a committed change touched."""

    position: int
    token_id: str
    digest: str | None = None
    """The digest of a value the change made (create, rotate): lets instances learn it."""


class Changes(Protocol):
    """The ordered change feed that keeps every instance's credential cache fresh.

    Positions are consecutive integers in commit order: a unit of work that records a
    change holds the feed's head until it commits, so no reader can see position ``n + 1``
    before ``n``, and a rolled-back change leaves no gap.
    """

    def record(self, token_id: str, at: datetime, digest: str | None = None) -> int:
        """Append a change (visible, and announced to listeners, when the unit commits);
        returns its position."""

    def head(self) -> int:
        """The position of the newest committed change (0 on a new database)."""

    def since(self, position: int, limit: int) -> Sequence[Change] | None:
        """Up to ``limit`` changes after ``position``, oldest first; None when ``position``
        is lost (changes after it were pruned, or it is ahead of the feed)."""

    def prune(self, before: datetime) -> int:
        """Drop changes recorded before ``before`` (the newest is always kept)."""


class AuditLog(Protocol):
    def add(self, event: AuditEvent) -> None: ...

    def page(
        self, limit: int, before: int | None, token_id: str | None, action: str | None
    ) -> Sequence[AuditEvent]:
        """Up to ``limit`` events, newest first, with ids below ``before``."""


class UnitOfWork(Protocol):
    @property
    def tokens(self) -> Tokens: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def changes(self) -> Changes: ...


class Watch(Protocol):
    def stop(self) -> object:
        """Stop pushing changes (and wait for the background work to end)."""


class Store(Protocol):
    def unit(self, *, write: bool = False) -> AbstractContextManager[UnitOfWork]:
        """A unit of work; raises StorageUnavailable when the database cannot be reached."""

    def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""

    def prepare(self) -> None:
        """Bring the schema up to date; raises StorageUnavailable while unreachable."""

    def watch(
        self, on_change: Callable[[int | None], None], on_lost: Callable[[], None]
    ) -> Watch | None:
        """Push change-feed positions as other instances commit them (None: this store
        cannot push, and the feed is polled). ``on_change`` gets the new head, or None
        when it is unknown (after a reconnect); ``on_lost`` runs when pushing stops."""

    @property
    def description(self) -> str:
        """What the store is, for logs and messages (never a password)."""

    def close(self) -> None: ...
