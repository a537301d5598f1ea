"""SQL repositories: rows in, domain values out. They never commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import Actor, Token, merge_ips
from apitokens.storage.port import Change, Position
from apitokens.storage.sql.notify import CHANGES_CHANNEL
from apitokens.storage.sql.schema import AuditRow, ChangeRow, EpochRow, SecretRow, TokenRow

# The writes and the lookups of one token are Core statements on the tables, built once:
# as ORM statements (an ORM insert, an ORM UPDATE ... RETURNING, objects loaded, changed and
# flushed) every write spent most of its time in the ORM's bookkeeping, and a write holds
# the interpreter lock that the requests being answered meanwhile need.
_TABLES = TokenRow.metadata.tables
_TOKENS = _TABLES[TokenRow.__tablename__]
_SECRETS = _TABLES[SecretRow.__tablename__]
_FIND = select(_TOKENS).where(_TOKENS.c.id == bindparam("id"))
_FIND_LOCKED = _FIND.with_for_update()
_BY_DIGEST = (
    select(_TOKENS, _SECRETS.c.valid_until)
    .join(_SECRETS, _SECRETS.c.token_id == _TOKENS.c.id)
    .where(_SECRETS.c.digest == bindparam("digest"))
)
_INSERT_TOKEN = insert(_TOKENS)
_INSERT_SECRET = insert(_SECRETS)
_SAVE = update(_TOKENS).where(_TOKENS.c.id == bindparam("_id"))
_END_VALUES = (
    update(_SECRETS)
    .where(
        _SECRETS.c.token_id == bindparam("_token_id"),
        or_(_SECRETS.c.valid_until.is_(None), _SECRETS.c.valid_until > bindparam("_until")),
    )
    .values(valid_until=bindparam("_until"))
)
_DELETE_SECRETS = delete(_SECRETS).where(_SECRETS.c.token_id == bindparam("id"))
_DELETE_TOKEN = delete(_TOKENS).where(_TOKENS.c.id == bindparam("id"))


def _token(row: Any) -> Token:
    """The token of a ``TokenRow``, or of a row of the tokens table (same names)."""
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
        self._session.execute(_INSERT_TOKEN, {"id": token.id, **_columns(token)})
        self._session.execute(
            _INSERT_SECRET,
            {"digest": digest, "token_id": token.id, "created_at": token.created_at},
        )

    def find(self, token_id: str, *, lock: bool = False) -> Token | None:
        if "\x00" in token_id:  # no id holds NUL, and PostgreSQL refuses it in text
            return None
        row = self._session.execute(_FIND_LOCKED if lock else _FIND, {"id": token_id}).first()
        return _token(row) if row else None

    def find_by_digest(self, digest: str) -> tuple[Token, datetime | None] | None:
        row = self._session.execute(_BY_DIGEST, {"digest": digest}).first()
        return (_token(row), row.valid_until) if row else None

    def save(self, token: Token) -> None:
        result = self._session.execute(_SAVE, {"_id": token.id, **_columns(token)})
        if not result.rowcount:  # type: ignore[attr-defined]
            raise LookupError(token.id)

    def replace_value(self, token_id: str, digest: str, now: datetime, old_until: datetime) -> None:
        self._session.execute(_END_VALUES, {"_token_id": token_id, "_until": old_until})
        self._session.execute(
            _INSERT_SECRET, {"digest": digest, "token_id": token_id, "created_at": now}
        )

    def delete(self, token_id: str) -> bool:
        # Lock the token row before touching its digests, in the order a rotation takes
        # them: the other order deadlocks against a concurrent rotation of the same token.
        if self.find(token_id, lock=True) is None:
            return False
        self._session.execute(_DELETE_SECRETS, {"id": token_id})
        result = self._session.execute(_DELETE_TOKEN, {"id": token_id})
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
        then one executemany UPDATE. On SQLite, two statements in all (``_SqliteUsage``)."""
        ids = sorted(usage)
        if self._session.get_bind().dialect.name == "sqlite":
            _SqliteUsage(self._session).record(ids, usage)
            return
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
            at, ips = _newer_use(usage[token_id], last_at, last_ips)
            changes.append({"_id": token_id, "at": at, "ips": ips})
        if changes:
            self._session.execute(
                update(_TOKENS)
                .where(_TOKENS.c.id == bindparam("_id"))
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


def _newer_use(
    use: tuple[datetime, tuple[str, ...]], last_at: datetime | None, last_ips: list[str] | None
) -> tuple[datetime, list[str]]:
    """A token's stored use and a flushed one, merged: ``lastUsedAt`` only moves forward,
    and the addresses of the newer use come first."""
    at, ips = use
    if last_at is None or last_at < at:
        return at, merge_ips(ips, last_ips or [])
    return last_at, merge_ips(last_ips or [], ips)


class _SqliteUsage:
    """The usage flush on SQLite as two statements, whatever the number of tokens: one read
    of every current value as a single JSON row, and one ``UPDATE ... FROM json_each``.

    Why: Python's sqlite3 lets go of the interpreter lock at every step of a statement,
    that is for every row read and every row of an ``executemany``, and wants it back
    right after. The flush runs on a thread beside the event loop; with the loop busy,
    each of those thousands of hand-backs waited up to the interpreter's switch interval
    and then interrupted the loop. Measured served, over 1,000 tokens a flush of
    ``executemany`` cost 150 ms of CPU (19 ms alone) and about 6 µs per request answered
    meanwhile. Values keep the columns' own formats (the types' processors make them).
    """

    _CURRENT = text(
        "SELECT json_group_array(json_array(id, last_used_at, json(last_used_ips))) "
        "FROM tokens WHERE id IN (SELECT value FROM json_each(:ids))"
    )
    _SET = text(
        "UPDATE tokens SET last_used_at = json_extract(c.value, '$[1]'), "
        "last_used_ips = json_extract(c.value, '$[2]') "
        "FROM json_each(:changes) AS c WHERE tokens.id = json_extract(c.value, '$[0]')"
    )

    def __init__(self, session: Session) -> None:
        self._session = session
        dialect = session.get_bind().dialect
        moment = _TOKENS.c.last_used_at.type.dialect_impl(dialect)
        stored, read = moment.bind_processor(dialect), moment.result_processor(dialect, None)
        assert stored is not None and read is not None  # SQLite keeps datetimes as text
        self._stored, self._read = stored, read

    def record(self, ids: list[str], usage: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> None:
        found = self._session.execute(self._CURRENT, {"ids": orjson.dumps(ids).decode()})
        changes = []
        for token_id, stored_at, stored_ips in orjson.loads(found.scalar_one()):
            last_at = self._read(stored_at) if stored_at is not None else None
            at, ips = _newer_use(usage[token_id], last_at, stored_ips)
            changes.append((token_id, self._stored(at), ips))
        if changes:
            self._session.execute(self._SET, {"changes": orjson.dumps(changes).decode()})


def _columns(token: Token) -> dict[str, Any]:
    """The tokens table's columns but ``id``, for ``token``."""
    return {
        "name": token.name,
        "permissions": list(token.permissions),
        "allowed_cidr_blocks": list(token.allowed_cidr_blocks),
        "created_at": token.created_at,
        "created_by_id": token.created_by.id,
        "created_by_type": token.created_by.type,
        "updated_at": token.updated_at,
        "updated_by_id": token.updated_by.id if token.updated_by else None,
        "updated_by_type": token.updated_by.type if token.updated_by else None,
        "rotated_at": token.rotated_at,
        "last_used_at": token.last_used_at,
        "last_used_ips": list(token.last_used_ips),
        "expires_at": token.expires_at,
    }


# Built once: a change is recorded on every write, and building a statement costs more
# Python time than running it on SQLite.
_EPOCH = _TABLES[EpochRow.__tablename__]
_ADVANCE = (
    update(_EPOCH)
    .where(_EPOCH.c.id == 1)
    .values(value=_EPOCH.c.value + 1)
    .returning(_EPOCH.c.value)
)
_HEAD = select(_EPOCH.c.value).where(_EPOCH.c.id == 1)
_APPEND = insert(_TABLES[ChangeRow.__tablename__])


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


_AUDIT_INSERT = insert(_TABLES[AuditRow.__tablename__])


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
