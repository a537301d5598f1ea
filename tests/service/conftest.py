"""Fixtures: a TokenService and an Authenticator on a real, migrated database (no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_harness import Harness, build_harness

from apitokens.domain.tokens import Principal
from apitokens.storage.migrate import upgrade
from apitokens.storage.sql import SqlStore


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A store on a fresh database of the current backend, migrated to head."""
    sql_store = SqlStore(database_url)
    upgrade(sql_store.engine)
    yield sql_store
    sql_store.close()


@pytest.fixture
def harness(store: SqlStore) -> Harness:
    return build_harness(store)


@pytest.fixture
def admin(harness: Harness) -> Principal:
    """The bootstrapped administrator, authenticated."""
    return harness.login(harness.bootstrap().value)
