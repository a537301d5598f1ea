"""PostgreSQL change notifications: sent on commit only, heard by ``ChangeListener``,
which reports a lost connection and listens again by itself."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from storage_helpers import HANG_GUARD_SECONDS, on_postgresql_only

from apitokens.storage.sql.notify import (
    APPLICATION_NAME,
    CHANGES_CHANNEL,
    ChangeListener,
    libpq_conninfo,
)
from apitokens.storage.sql.store import SqlStore
from support.databases import database_name
from support.postgres import PostgresCluster

END = "end-of-test"


class Boom(Exception):
    pass


@pytest.fixture
def events() -> queue.Queue[str]:
    return queue.Queue()


@pytest.fixture
def listener(store: SqlStore, events: queue.Queue[str]) -> Iterator[ChangeListener]:
    changes = ChangeListener(
        store.url, lambda position: events.put(f"change {position}"), lambda: events.put("lost")
    )
    changes.start()
    assert changes.wait_listening(HANG_GUARD_SECONDS)
    # on (re)start: something may have been missed, position unknown
    assert events.get(timeout=HANG_GUARD_SECONDS) == "change None"
    yield changes
    changes.stop()


def _bump(store: SqlStore, *, commit: bool) -> None:
    try:
        with store.unit(write=True) as unit:
            unit.changes.record("token", datetime.now(UTC))
            if not commit:
                raise Boom
    except Boom:
        pass


@on_postgresql_only
def test_a_notification_is_sent_on_commit_and_never_on_rollback(
    store: SqlStore, pg_cluster: PostgresCluster, migrated_database_url: str
) -> None:
    with pg_cluster.connect(database_name(migrated_database_url)) as listening:
        listening.execute(f"LISTEN {CHANGES_CHANNEL}")
        _bump(store, commit=False)
        _bump(store, commit=True)
        with pg_cluster.connect(database_name(migrated_database_url)) as other:
            other.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, END))
        heard: list[str] = []
        for notification in listening.notifies(timeout=HANG_GUARD_SECONDS):
            heard.append(notification.payload)
            if notification.payload == END:
                break
    assert heard == ["1", END]  # the committed change's feed position; the rollback sent none


@on_postgresql_only
def test_the_listener_hears_each_committed_change(
    store: SqlStore, listener: ChangeListener, events: queue.Queue[str]
) -> None:
    for position in range(1, 4):
        _bump(store, commit=True)
        assert events.get(timeout=HANG_GUARD_SECONDS) == f"change {position}"
    assert listener.listening


@on_postgresql_only
def test_the_listener_reports_a_lost_connection_and_listens_again(
    store: SqlStore,
    listener: ChangeListener,
    events: queue.Queue[str],
    pg_cluster: PostgresCluster,
) -> None:
    with pg_cluster.connect() as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    assert killed == (1,)
    assert events.get(timeout=HANG_GUARD_SECONDS) == "lost"
    assert events.get(timeout=HANG_GUARD_SECONDS) == "change None"  # listening again
    _bump(store, commit=True)
    assert events.get(timeout=HANG_GUARD_SECONDS) == "change 1"
    assert listener.listening


@on_postgresql_only
def test_stop_ends_the_listener_thread(listener: ChangeListener) -> None:
    assert listener.stop()
    assert not listener.listening


def test_libpq_conninfo_keeps_credentials_and_options() -> None:
    url = "postgresql+psycopg://user:p%40ss@db.example:6543/tokens?sslmode=require"
    conninfo = libpq_conninfo(url)
    assert conninfo == "postgresql://user:p%40ss@db.example:6543/tokens?sslmode=require"
    assert psycopg.conninfo.conninfo_to_dict(conninfo)["password"] == "p@ss"
