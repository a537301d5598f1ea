"""Tables. Portable types only: the same schema and migrations serve SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: we store UTC, naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    allowed_cidr_blocks: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by_id: Mapped[str] = mapped_column(String(256))
    created_by_type: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[str | None] = mapped_column(String(256))
    updated_by_type: Mapped[str | None] = mapped_column(String(16))
    rotated_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ips: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_tokens_created_at_id", "created_at", "id"),)


class SecretRow(Base):
    """The digests of a token's values: the current one, and rotated-out ones.

    A rotated-out digest is kept after its grace period so that a later use of it can be
    recognised and recorded as suspicious; it never authenticates again.
    """

    __tablename__ = "token_secrets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tokens.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    valid_until: Mapped[datetime | None]


class EpochRow(Base):
    """The head of the change feed: the position of the newest change.

    Every unit of work that records a change increments it first, so the row lock orders
    writers and positions follow commit order (see ``storage.port.Changes``).
    """

    __tablename__ = "cache_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ChangeRow(Base):
    """The change feed: which token each committed change touched, in order."""

    __tablename__ = "token_changes"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    token_id: Mapped[str] = mapped_column(String(36))
    digest: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[str | None] = mapped_column(String(36))
    actor_id: Mapped[str | None] = mapped_column(String(256))
    actor_type: Mapped[str | None] = mapped_column(String(16))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_events_token_id_id", "token_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
    )
