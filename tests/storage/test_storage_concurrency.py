"""Concurrent units of work on the SQL store: no lost epoch bump, no deadlock, no error.

The PostgreSQL cases are made deterministic by waiting until one transaction is seen
blocked on another's lock (``pg_stat_activity``) before letting the other go on.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from storage_helpers import HANG_GUARD_SECONDS, on_postgresql_only

from apitokens.domain.tokens import SYSTEM, Actor, Token
from apitokens.storage.sql.store import SqlStore
from support.databases import database_name
from support.postgres import PostgresCluster


def _token(name: str = "t") -> Token:
    now = datetime.now(UTC)
    return Token(
        id=f"{secrets.token_hex(4)}-0000-0000-0000-{secrets.token_hex(6)}",
        name=name,
        permissions=("OrganizationAPITokenRead",),
        allowed_cidr_blocks=(),
        created_at=now,
        created_by=Actor("test", SYSTEM),
    )


def _digest() -> str:
    return secrets.token_hex(32)


def _add(store: SqlStore, token: Token) -> str:
    digest = _digest()
    with store.unit(write=True) as unit:
        unit.tokens.add(token, digest)
    return digest


def _bump(store: SqlStore) -> None:
    with store.unit(write=True) as unit:
        unit.changes.record("token", datetime.now(UTC))


def _epoch(store: SqlStore) -> int:
    with store.unit() as unit:
        return unit.changes.head()


def _wait_blocked(cluster: PostgresCluster, url: str, count: int = 1) -> None:
    """Wait until ``count`` sessions on the database wait for a lock."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    with cluster.connect() as connection:
        while True:
            row = connection.execute(query, (database_name(url),)).fetchone()
            if row is not None and row[0] >= count:
                return
            assert time.monotonic() < deadline, "the second transaction never blocked"
            time.sleep(0.01)


def test_simultaneous_first_changes_are_all_recorded_in_order(store: SqlStore) -> None:
    """A new database has no feed head: concurrent first changes must not collide on it,
    and their positions are consecutive (no gap, no duplicate)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(_bump, store) for _ in range(16)]:
            future.result()
    assert _epoch(store) == 16
    with store.unit() as unit:
        changes = unit.changes.since(0, 100)
    assert changes is not None
    assert [change.position for change in changes] == list(range(1, 17))


@on_postgresql_only
def test_first_change_waits_for_another_first_change(
    store: SqlStore, pg_cluster: PostgresCluster, migrated_database_url: str
) -> None:
    """The exact interleaving: both find no row; the second insert waits for the first."""
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with store.unit(write=True) as unit:
            unit.changes.record("token", datetime.now(UTC))
            holding.set()
            assert release.wait(HANG_GUARD_SECONDS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first_done = pool.submit(first)
        assert holding.wait(HANG_GUARD_SECONDS)
        second_done = pool.submit(_bump, store)
        _wait_blocked(pg_cluster, migrated_database_url)
        release.set()
        first_done.result(timeout=HANG_GUARD_SECONDS)
        second_done.result(timeout=HANG_GUARD_SECONDS)
    assert _epoch(store) == 2


def _rotate_holding_lock(
    store: SqlStore, token_id: str, locked: threading.Event, go: threading.Event
) -> None:
    """A rotation as the service does it: lock the row, replace the value, save, bump."""
    with store.unit(write=True) as unit:
        current = unit.tokens.find(token_id, lock=True)
        assert current is not None
        locked.set()
        assert go.wait(HANG_GUARD_SECONDS)
        now = datetime.now(UTC)
        unit.tokens.replace_value(token_id, _digest(), now, now + timedelta(0))
        unit.tokens.save(current)
        unit.changes.record(token_id, now)


def _delete(store: SqlStore, token_id: str) -> bool:
    with store.unit(write=True) as unit:
        deleted = unit.tokens.delete(token_id)
        unit.changes.record(token_id, datetime.now(UTC))
    return deleted


@on_postgresql_only
def test_deleting_a_token_while_it_rotates_does_not_deadlock(
    store: SqlStore, pg_cluster: PostgresCluster, migrated_database_url: str
) -> None:
    """Deletion waits for the row lock before touching the digests a rotation updates."""
    token = _token()
    old_digest = _add(store, token)
    locked, go = threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        rotation = pool.submit(_rotate_holding_lock, store, token.id, locked, go)
        assert locked.wait(HANG_GUARD_SECONDS)
        deletion = pool.submit(_delete, store, token.id)
        _wait_blocked(pg_cluster, migrated_database_url)
        go.set()
        rotation.result(timeout=HANG_GUARD_SECONDS)
        assert deletion.result(timeout=HANG_GUARD_SECONDS) is True
    with store.unit() as unit:
        assert unit.tokens.find(token.id) is None
        assert unit.tokens.find_by_digest(old_digest) is None


def test_concurrent_usage_flushes_keep_the_newest_use(store: SqlStore) -> None:
    """Instances flush ``lastUsedAt`` in any order; the newest survives, none is lost."""
    tokens = [_token(f"used-{index}") for index in range(5)]
    for token in tokens:
        _add(store, token)
    base = datetime.now(UTC).replace(microsecond=0)
    batches = [
        {token.id: (base + timedelta(seconds=round_), (f"10.0.0.{round_}",)) for token in tokens}
        for round_ in range(12)
    ]

    def flush(batch: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> Callable[[], None]:
        def run() -> None:
            with store.unit(write=True) as unit:
                unit.tokens.record_usage(batch)

        return run

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures: list[Future[None]] = [pool.submit(flush(batch)) for batch in reversed(batches)]
        for future in futures:
            future.result()
    with store.unit() as unit:
        for token in tokens:
            stored = unit.tokens.find(token.id)
            assert stored is not None
            assert stored.last_used_at == base + timedelta(seconds=11)
            assert stored.last_used_ips[0] == "10.0.0.11"
