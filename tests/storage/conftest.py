"""Fixtures for storage tests: engines and stores on fresh databases of each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from apitokens.storage.migrate import upgrade
from apitokens.storage.sql.store import SqlStore, build_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine (built as the service builds it) on a fresh, empty database."""
    built = build_engine(database_url)
    yield built
    built.dispose()


@pytest.fixture
def store(migrated_database_url: str) -> Iterator[SqlStore]:
    """A store on an empty database of the current backend at head (a copy of the migrated
    template; ``upgrade`` finds nothing to do, and fails the test if it is not at head)."""
    sql_store = SqlStore(migrated_database_url)
    upgrade(sql_store.engine)
    yield sql_store
    sql_store.close()
