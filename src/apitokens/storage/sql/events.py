"""SQL repositories of lifecycle events: webhooks, the outbox, usage days, expiry warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Date, Integer, bindparam, delete, exists, func, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from apitokens.domain.events import PENDING, Delivery, Webhook
from apitokens.domain.tokens import Actor, Token
from apitokens.storage.port import Position
from apitokens.storage.sql.repositories import _token
from apitokens.storage.sql.schema import (
    DeliveryRow,
    ExpiryWarningRow,
    TokenRow,
    UsageDayRow,
    WebhookRow,
)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _webhook(row: Any) -> Webhook:
    """The webhook of a ``WebhookRow``, or of a row of the webhooks table (same names)."""
    actor = (
        Actor(row.created_by_id, row.created_by_type)
        if row.created_by_id and row.created_by_type
        else None
    )
    return Webhook(
        id=row.id,
        url=row.url,
        events=tuple(row.events),
        description=row.description,
        created_at=row.created_at,
        created_by=actor,
        secret=row.secret,
    )


def _delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event=row.event,
        body=row.body,
        created_at=row.created_at,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        delivered_at=row.delivered_at,
    )


def _valid_id(identifier: str) -> bool:
    return "\x00" not in identifier  # PostgreSQL refuses NUL in text: no id holds it


_WEBHOOKS = WebhookRow.metadata.tables[WebhookRow.__tablename__]
_ALL_WEBHOOKS = select(_WEBHOOKS).order_by(_WEBHOOKS.c.created_at, _WEBHOOKS.c.id)
"""Core, not ORM: every write asks (``EventOutbox.emit``), and usually finds none."""


class SqlWebhooks:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, webhook: Webhook) -> None:
        self._session.add(
            WebhookRow(
                id=webhook.id,
                url=webhook.url,
                events=list(webhook.events),
                description=webhook.description,
                secret=webhook.secret,
                created_at=webhook.created_at,
                created_by_id=webhook.created_by.id if webhook.created_by else None,
                created_by_type=webhook.created_by.type if webhook.created_by else None,
            )
        )
        self._session.flush()

    def find(self, webhook_id: str) -> Webhook | None:
        if not _valid_id(webhook_id):
            return None
        row = self._session.get(WebhookRow, webhook_id)
        return _webhook(row) if row else None

    def all(self) -> Sequence[Webhook]:  # every write asks (EventOutbox.emit): built once
        return [_webhook(row) for row in self._session.execute(_ALL_WEBHOOKS)]

    def page(self, limit: int, after: Position | None) -> Sequence[Webhook]:
        query = select(WebhookRow).order_by(WebhookRow.created_at.desc(), WebhookRow.id.desc())
        if after is not None:
            query = query.where(tuple_(WebhookRow.created_at, WebhookRow.id) < after)
        return [_webhook(row) for row in self._session.scalars(query.limit(limit))]

    def delete(self, webhook_id: str) -> bool:
        if not _valid_id(webhook_id):
            return False
        # Deliveries first: SQLite enforces the cascade only with its foreign_keys pragma.
        self._session.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id))
        result = self._session.execute(delete(WebhookRow).where(WebhookRow.id == webhook_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(WebhookRow)) or 0)


class SqlOutbox:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, delivery: Delivery) -> None:
        row = DeliveryRow(id=delivery.id)
        self._fill(row, delivery)
        self._session.add(row)

    def has_due(self, now: datetime) -> bool:
        query = select(
            exists().where(DeliveryRow.status == PENDING, DeliveryRow.next_attempt_at <= now)
        )
        return bool(self._session.scalar(query))

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> Sequence[Delivery]:
        # SKIP LOCKED: several instances claim at once without waiting on one another and
        # without taking the same row (SQLite has one writer at a time and ignores it).
        query = (
            select(DeliveryRow)
            .where(DeliveryRow.status == PENDING, DeliveryRow.next_attempt_at <= now)
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(self._session.scalars(query))
        claimed = [_delivery(row) for row in rows]
        for row in rows:
            row.next_attempt_at = lease_until
        self._session.flush()
        return claimed

    def save(self, delivery: Delivery) -> None:
        row = self._session.get(DeliveryRow, delivery.id)
        if row is None:
            return  # its webhook was deleted while it was being sent
        self._fill(row, delivery)
        self._session.flush()

    def page(self, webhook_id: str, limit: int, after: Position | None) -> Sequence[Delivery]:
        if not _valid_id(webhook_id):
            return []
        query = (
            select(DeliveryRow)
            .where(DeliveryRow.webhook_id == webhook_id)
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc())
        )
        if after is not None:
            query = query.where(tuple_(DeliveryRow.created_at, DeliveryRow.id) < after)
        return [_delivery(row) for row in self._session.scalars(query.limit(limit))]

    @staticmethod
    def _fill(row: DeliveryRow, delivery: Delivery) -> None:
        row.webhook_id = delivery.webhook_id
        row.event = delivery.event
        row.body = delivery.body
        row.status = delivery.status
        row.attempts = delivery.attempts
        row.next_attempt_at = delivery.next_attempt_at
        row.last_status_code = delivery.last_status_code
        row.delivered_at = delivery.delivered_at
        row.created_at = delivery.created_at


class SqlUsageDays:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, counts: Mapping[tuple[str, date], int]) -> None:
        """One statement for the whole batch (executemany), in one lock order everywhere.

        INSERT ... SELECT from tokens: a token deleted meanwhile adds nothing (no foreign
        key failure that would lose the whole flush)."""
        if not counts:
            return
        if self._session.get_bind().dialect.name == "sqlite":
            self._add_sqlite(counts)
            return
        table = UsageDayRow.__table__
        tokens = TokenRow.__table__
        source = select(
            tokens.c.id,
            bindparam("day", type_=Date()),
            bindparam("requests", type_=Integer()),
        ).where(tokens.c.id == bindparam("token"))
        statement = _insert(self._session)(table).from_select(
            ["token_id", "day", "requests"], source
        )
        statement = statement.on_conflict_do_update(
            index_elements=["token_id", "day"],
            set_={"requests": table.c.requests + statement.excluded.requests},
        )
        rows = [
            {"token": token_id, "day": day, "requests": requests}
            for (token_id, day), requests in sorted(counts.items())
        ]
        self._session.execute(statement, rows)

    # SQLite: one statement for every count (as ``repositories._SqliteUsage``, and why).
    _SQLITE_ADD = text(
        "INSERT INTO token_usage_days (token_id, day, requests) "
        "SELECT t.id, json_extract(d.value, '$[1]'), json_extract(d.value, '$[2]') "
        "FROM json_each(:counts) AS d JOIN tokens AS t ON t.id = json_extract(d.value, '$[0]') "
        "WHERE true "  # an upsert's SELECT needs a WHERE (SQLite's parser)
        "ON CONFLICT (token_id, day) DO UPDATE SET requests = requests + excluded.requests"
    )

    def _add_sqlite(self, counts: Mapping[tuple[str, date], int]) -> None:
        dialect = self._session.get_bind().dialect
        day = UsageDayRow.__table__.c.day.type.dialect_impl(dialect).bind_processor(dialect)
        rows = [
            (token_id, day(on) if day else on.isoformat(), requests)
            for (token_id, on), requests in sorted(counts.items())
        ]
        self._session.execute(self._SQLITE_ADD, {"counts": orjson.dumps(rows).decode()})

    def between(self, token_id: str, first: date, last: date) -> Mapping[date, int]:
        if not _valid_id(token_id):
            return {}
        query = select(UsageDayRow.day, UsageDayRow.requests).where(
            UsageDayRow.token_id == token_id, UsageDayRow.day >= first, UsageDayRow.day <= last
        )
        return {day: int(requests) for day, requests in self._session.execute(query)}


class SqlExpiryWarnings:
    def __init__(self, session: Session) -> None:
        self._session = session

    def unwarned(self, threshold_seconds: int, until: datetime, limit: int) -> Sequence[Token]:
        warned = exists().where(
            ExpiryWarningRow.token_id == TokenRow.id,
            ExpiryWarningRow.expires_at == TokenRow.expires_at,
            ExpiryWarningRow.threshold_seconds <= threshold_seconds,
        )
        query = (
            select(TokenRow)
            .where(TokenRow.expires_at.is_not(None), TokenRow.expires_at <= until, ~warned)
            .order_by(TokenRow.expires_at, TokenRow.id)
            .limit(limit)
        )
        return [_token(row) for row in self._session.scalars(query)]

    def mark(self, token_id: str, expires_at: datetime, threshold_seconds: int) -> bool:
        statement = (
            _insert(self._session)(ExpiryWarningRow)
            .values(token_id=token_id, expires_at=expires_at, threshold_seconds=threshold_seconds)
            .on_conflict_do_nothing()
            # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT DO NOTHING.
            .returning(ExpiryWarningRow.token_id)
        )
        return self._session.execute(statement).first() is not None
