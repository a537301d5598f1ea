"""The SQL store: engine, pool, units of work, and database errors turned into 503s."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from apitokens.domain.errors import StorageUnavailable
from apitokens.storage.port import Watch
from apitokens.storage.sql.events import SqlExpiryWarnings, SqlOutbox, SqlUsageDays, SqlWebhooks
from apitokens.storage.sql.notify import CONNECT_TIMEOUT_SECONDS, ChangeListener
from apitokens.storage.sql.repositories import SqlAuditLog, SqlChanges, SqlTokens

_WRITE = "apitokens_write"

log = logging.getLogger("apitokens.storage")


@dataclass
class SqlUnit:
    session: Session
    tokens: SqlTokens
    audit: SqlAuditLog
    changes: SqlChanges
    webhooks: SqlWebhooks
    outbox: SqlOutbox
    usage_days: SqlUsageDays
    expiry_warnings: SqlExpiryWarnings

    @classmethod
    def of(cls, session: Session) -> SqlUnit:
        return cls(
            session,
            SqlTokens(session),
            SqlAuditLog(session),
            SqlChanges(session),
            SqlWebhooks(session),
            SqlOutbox(session),
            SqlUsageDays(session),
            SqlExpiryWarnings(session),
        )


def build_engine(url: str) -> Engine:
    """An engine tuned per backend.

    SQLite runs in WAL mode (readers never wait for the writer) and write transactions
    start with ``BEGIN IMMEDIATE``, so two writers queue on the busy timeout instead of
    failing when a read lock cannot be upgraded. PostgreSQL gets a bounded connect timeout
    and pre-ping, so a database that went away gives a prompt 503 and is found again.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_private(parsed.database)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=5,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 3, "options": "-c statement_timeout=15000"},
    )


def for_writing(engine: Engine) -> Engine:
    """The engine whose transactions are write transactions from their first statement.

    On SQLite they begin with ``BEGIN IMMEDIATE`` and so wait for another writer (busy
    timeout) instead of failing with "database is locked" when they first write.
    """
    return engine.execution_options(**{_WRITE: True})


def _create_private(path: str | None) -> None:
    """Create a new SQLite file readable by its owner only (0600) before SQLite opens it.

    It holds names, client addresses and the audit trail. SQLite gives the ``-wal`` and
    ``-shm`` files it creates later the permissions of the database file.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    # The wait for a lock first: switching a new file to WAL takes a lock too, and several
    # processes may open the same new file at once (instances migrating it together).
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    write = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class SqlStore:
    """A ``Store`` over SQLAlchemy. One per process; thread-safe."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or build_engine(url)
        self.dialect = self.engine.dialect.name
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(for_writing(self.engine), expire_on_commit=False)

    @contextmanager
    def unit(self, *, write: bool = False) -> Iterator[SqlUnit]:
        factory = self._write if write else self._read
        try:
            with factory() as session, session.begin():
                yield SqlUnit.of(session)
        except (OperationalError, PoolTimeout) as error:
            raise StorageUnavailable() from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise StorageUnavailable() from error
            raise

    def ping(self) -> None:
        with self.unit() as unit:
            unit.session.execute(text("SELECT 1"))

    def prepare(self) -> None:
        from apitokens.storage.migrate import upgrade  # migrate imports this module

        try:
            upgrade(self.engine)
        except (OperationalError, PoolTimeout) as error:
            raise StorageUnavailable() from error

    def watch(
        self, on_change: Callable[[int | None], None], on_lost: Callable[[], None]
    ) -> Watch | None:
        """On PostgreSQL, a LISTEN connection that hears each committed position."""
        if self.dialect != "postgresql":
            return None
        listener = ChangeListener(self.url, on_change, on_lost)
        listener.start()
        if not listener.wait_listening(CONNECT_TIMEOUT_SECONDS):
            log.warning("not listening for token changes yet; polling the feed meanwhile")
        return listener

    @property
    def description(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()
