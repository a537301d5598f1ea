"""Fixtures: the services on a fresh store of each backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import Harness, build_harness

from apitokens.domain.tokens import Principal
from apitokens.storage.memory import MemoryStore
from apitokens.storage.port import Store
from apitokens.storage.sql import SqlStore
from support.databases import backend_params, sqlite_url
from support.postgres import PostgresCluster, require_postgres


@pytest.fixture(params=backend_params(("memory",)))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store: in memory, or a new database of a backend (migrated by the harness,
    as the server migrates at start)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "service.db")
    else:
        require_postgres()
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database(f"s_{secrets.token_hex(6)}")
    sql_store = SqlStore(url)
    yield sql_store
    sql_store.close()


@pytest.fixture
def harness(store: Store) -> Harness:
    return build_harness(store)


@pytest.fixture
def admin(harness: Harness) -> Principal:
    """The bootstrapped administrator, authenticated."""
    return harness.login(harness.bootstrap().value)
