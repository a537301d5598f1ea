"""Fixtures: the services on a fresh store of each backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import Harness, build_harness

from apitokens.domain.tokens import Principal
from apitokens.storage.memory import MemoryStore
from apitokens.storage.port import Store
from apitokens.storage.sql import SqlStore
from support.databases import backend_params, migrated_database
from support.postgres import require_postgres


@pytest.fixture(params=backend_params(("memory",)))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store: in memory, or an empty database of a backend, already at the newest
    schema (a copy of the migrated template; the harness's upgrade at start finds nothing
    to do, as a server's does on a migrated database). The migrations themselves are
    tested in tests/storage."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "postgresql":
        require_postgres()
    with migrated_database(request.param, request, tmp_path) as url:
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
