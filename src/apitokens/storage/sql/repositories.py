"""SQL repositories: rows in, domain values out. They never commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import Actor, Token, merge_ips
from apitokens.storage.port import Change, Position
from apitokens.storage.sql.notify import CHANGES_CHANNEL
from apitokens.storage.sql.schema import AuditRow, ChangeRow, EpochRow, SecretRow, TokenRow


def _token(row: TokenRow) -> Token:
    updated_by = (
        Actor(row.updated_by_id, row.updated_by_type)
        if row.updated_by_id and row.updated_by_type
        else None
    )
    return Token(
        id=row.id,
        name=row.name,
        permissions=tuple(row.permissions),
        allowed_cidr_blocks=tuple(row.allowed_cidr_blocks),
        created_at=row.created_at,
        created_by=Actor(row.created_by_id, row.created_by_type),
        updated_at=row.updated_at,
        updated_by=updated_by,
        rotated_at=row.rotated_at,
        last_used_at=row.last_used_at,
        last_used_ips=tuple(row.last_used_ips or ()),
        expires_at=row.expires_at,
    )


_USAGE_BATCH = 500


class SqlTokens:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, token: Token, digest: str) -> None:
        row = TokenRow(id=token.id)
        self._fill(row, token)
        self._session.add(row)
        self._session.flush()  # the token row first: the digest row refers to it
        self._session.add(SecretRow(digest=digest, token_id=token.id, created_at=token.created_at))
        self._session.flush()

    def find(self, token_id: str, *, lock: bool = False) -> Token | None:
        if "\x00" in token_id:  # no id holds NUL, and PostgreSQL refuses it in text
            return None
        query = select(TokenRow).where(TokenRow.id == token_id)
        if lock:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return _token(row) if row else None

    def find_by_digest(self, digest: str) -> tuple[Token, datetime | None] | None:
        query = (
            select(TokenRow, SecretRow.valid_until)
            .join(SecretRow, SecretRow.token_id == TokenRow.id)
            .where(SecretRow.digest == digest)
        )
        found = self._session.execute(query).one_or_none()
        return (_token(found[0]), found[1]) if found else None

    def save(self, token: Token) -> None:
        row = self._session.get(TokenRow, token.id)
        if row is None:
            raise LookupError(token.id)
        self._fill(row, token)
        self._session.flush()

    def replace_value(self, token_id: str, digest: str, now: datetime, old_until: datetime) -> None:
        self._session.execute(
            update(SecretRow)
            .where(
                SecretRow.token_id == token_id,
                or_(SecretRow.valid_until.is_(None), SecretRow.valid_until > old_until),
            )
            .values(valid_until=old_until)
        )
        self._session.add(SecretRow(digest=digest, token_id=token_id, created_at=now))
        self._session.flush()

    def delete(self, token_id: str) -> bool:
        # Lock the token row before touching its digests, in the order a rotation takes
        # them: the other order deadlocks against a concurrent rotation of the same token.
        if self.find(token_id, lock=True) is None:
            return False
        self._session.execute(delete(SecretRow).where(SecretRow.token_id == token_id))
        result = self._session.execute(delete(TokenRow).where(TokenRow.id == token_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def page(self, limit: int, after: Position | None) -> Sequence[Token]:
        query = select(TokenRow).order_by(TokenRow.created_at.desc(), TokenRow.id.desc())
        if after is not None:
            query = query.where(tuple_(TokenRow.created_at, TokenRow.id) < after)
        return [_token(row) for row in self._session.scalars(query.limit(limit))]

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(TokenRow)) or 0)

    def digests(self) -> Iterator[str]:
        query = select(SecretRow.digest).execution_options(yield_per=10_000)
        yield from self._session.scalars(query)

    def digest_count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(SecretRow)) or 0)

    def record_usage(self, usage: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> None:
        """Two statements per batch of tokens, not two per token: one locking read of the
        current values (in id order: one lock order across instances, so no deadlock),
        then one executemany UPDATE."""
        ids = sorted(usage)
        for start in range(0, len(ids), _USAGE_BATCH):
            self._record_batch(ids[start : start + _USAGE_BATCH], usage)

    def _record_batch(
        self, ids: list[str], usage: Mapping[str, tuple[datetime, tuple[str, ...]]]
    ) -> None:
        current = self._session.execute(
            select(TokenRow.id, TokenRow.last_used_at, TokenRow.last_used_ips)
            .where(TokenRow.id.in_(ids))
            .order_by(TokenRow.id)
            .with_for_update()
        ).all()
        changes = []
        for token_id, last_at, last_ips in current:
            at, ips = usage[token_id]
            if last_at is None or last_at < at:
                changes.append({"_id": token_id, "at": at, "ips": merge_ips(ips, last_ips or [])})
            else:
                merged = merge_ips(last_ips or [], ips)
                changes.append({"_id": token_id, "at": last_at, "ips": merged})
        if changes:
            self._session.execute(
                update(TokenRow.__table__)  # type: ignore[arg-type]
                .where(TokenRow.__table__.c.id == bindparam("_id"))
                .values(last_used_at=bindparam("at"), last_used_ips=bindparam("ips")),
                changes,
            )

    def prune_values(self, ended_before: datetime) -> int:
        result = self._session.execute(
            delete(SecretRow).where(
                SecretRow.valid_until.is_not(None), SecretRow.valid_until < ended_before
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _fill(row: TokenRow, token: Token) -> None:
        row.name = token.name
        row.permissions = list(token.permissions)
        row.allowed_cidr_blocks = list(token.allowed_cidr_blocks)
        row.created_at = token.created_at
        row.created_by_id = token.created_by.id
        row.created_by_type = token.created_by.type
        row.updated_at = token.updated_at
        row.updated_by_id = token.updated_by.id if token.updated_by else None
        row.updated_by_type = token.updated_by.type if token.updated_by else None
        row.rotated_at = token.rotated_at
        row.last_used_at = token.last_used_at
        row.last_used_ips = list(token.last_used_ips)
        row.expires_at = token.expires_at


# Built once: a change is recorded on every write, and building a statement costs more
# Python time than running it on SQLite.
_ADVANCE = (
    update(EpochRow)
    .where(EpochRow.id == 1)
    .values(value=EpochRow.value + 1)
    .returning(EpochRow.value)
)
_HEAD = select(EpochRow.value).where(EpochRow.id == 1)
_APPEND = insert(ChangeRow)


class SqlChanges:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, token_id: str, at: datetime, digest: str | None = None) -> int:
        """Advance the head (its row lock orders writers until commit), then append.

        On PostgreSQL the new position is also sent to listening instances; PostgreSQL
        delivers it only once this transaction commits, and never if it rolls back.
        """
        position = self._advance()
        self._session.execute(
            _APPEND, {"position": position, "token_id": token_id, "digest": digest, "at": at}
        )
        if self._dialect() == "postgresql":
            self._session.execute(select(func.pg_notify(CHANGES_CHANNEL, str(position))))
        return position

    def _advance(self) -> int:
        position = self._session.scalar(_ADVANCE)
        if position is None:  # a new database: two first writers must not both insert
            self._session.execute(self._insert_head())
            position = self._session.scalar(_ADVANCE)
        return int(position or 0)

    def _insert_head(self) -> postgresql.Insert | sqlite.Insert:
        insert = postgresql.insert if self._dialect() == "postgresql" else sqlite.insert
        return insert(EpochRow).values(id=1, value=0).on_conflict_do_nothing(index_elements=["id"])

    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    def head(self) -> int:
        return int(self._session.scalar(_HEAD) or 0)

    def since(self, position: int, limit: int) -> Sequence[Change] | None:
        head = self.head()
        if position > head:
            return None
        if position == head:
            return []
        rows = self._session.scalars(
            select(ChangeRow)
            .where(ChangeRow.position > position)
            .order_by(ChangeRow.position)
            .limit(limit)
        ).all()
        if not rows or rows[0].position != position + 1:
            return None
        return [Change(row.position, row.token_id, row.digest) for row in rows]

    def prune(self, before: datetime) -> int:
        newest = select(func.max(ChangeRow.position)).scalar_subquery()
        result = self._session.execute(
            delete(ChangeRow).where(ChangeRow.at < before, ChangeRow.position < newest)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


_AUDIT_INSERT = insert(AuditRow)


class SqlAuditLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, event: AuditEvent) -> None:
        self._session.execute(
            _AUDIT_INSERT,
            {
                "at": event.at,
                "action": event.action,
                "token_id": event.token_id,
                "actor_id": event.actor.id if event.actor else None,
                "actor_type": event.actor.type if event.actor else None,
                "client_ip": event.client_ip,
                "detail": event.detail,
            },
        )

    def page(
        self, limit: int, before: int | None, token_id: str | None, action: str | None
    ) -> Sequence[AuditEvent]:
        conditions = []
        if before is not None:
            conditions.append(AuditRow.id < before)
        if token_id is not None:
            if "\x00" in token_id:  # no id holds NUL, and PostgreSQL refuses it in text
                return []
            conditions.append(AuditRow.token_id == token_id)
        if action is not None:
            conditions.append(AuditRow.action == action)
        query = select(AuditRow).where(and_(True, *conditions)).order_by(AuditRow.id.desc())
        return [_event(row) for row in self._session.scalars(query.limit(limit))]


def _event(row: AuditRow) -> AuditEvent:
    actor = Actor(row.actor_id, row.actor_type) if row.actor_id and row.actor_type else None
    return AuditEvent(
        id=row.id,
        action=row.action,
        token_id=row.token_id,
        actor=actor,
        client_ip=row.client_ip,
        at=row.at,
        detail=dict(row.detail or {}),
    )
