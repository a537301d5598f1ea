"""lastUsedAt: set by use, written in batches, and kept across a clean restart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import TIME_FORMAT, TOKENS, create, wait_until

from apitokens.storage.sql import SqlStore
from support.processes import RunningServer
from support.protocols import ApiClientFactory, ServerFactory

FAST_FLUSH = {"APITOKENS_LAST_USED_FLUSH_SECONDS": "0.2"}
SLOW_FLUSH = {"APITOKENS_LAST_USED_FLUSH_SECONDS": "60"}  # only the shutdown flush can write


@pytest.fixture
def fast_server(server_factory: ServerFactory, database_url: str) -> RunningServer:
    """A server that writes usage every 0.2 s."""
    return server_factory(database_url, env=FAST_FLUSH)


@pytest.fixture
def slow_server(server_factory: ServerFactory, database_url: str) -> RunningServer:
    """A server whose periodic usage flush never fires during a test."""
    return server_factory(database_url, env=SLOW_FLUSH)


def _stored_last_used(database_url: str, token_id: str) -> Any:
    store = SqlStore(database_url)
    try:
        with store.unit() as unit:
            token = unit.tokens.find(token_id)
    finally:
        store.close()
    assert token is not None
    return token.last_used_at


def _used_token(
    server: RunningServer, api: ApiClientFactory
) -> tuple[httpx.Client, dict[str, Any], str]:
    """A new token, used once; returns the admin client, the token and its lastUsedAt."""
    admin = api(server, server.admin)
    token = create(admin, "ci")
    assert token["lastUsedAt"] is None
    used = api(server, token["value"]).get(f"{TOKENS}/self").json()["lastUsedAt"]
    return admin, token, used


def test_last_used_at_is_set_by_a_use(fast_server: RunningServer, api: ApiClientFactory) -> None:
    server = fast_server
    admin, token, used = _used_token(server, api)
    assert TIME_FORMAT.match(used)
    assert used >= token["createdAt"]
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used
    listed = {item["id"]: item for item in admin.get(TOKENS).json()["results"]}
    assert listed[token["id"]]["lastUsedAt"] == used


def test_last_used_at_is_written_to_the_database(
    fast_server: RunningServer, api: ApiClientFactory
) -> None:
    server = fast_server
    _admin, token, _used = _used_token(server, api)
    wait_until(lambda: _stored_last_used(server.database_url, token["id"]) is not None)


def test_last_used_at_survives_a_restart(fast_server: RunningServer, api: ApiClientFactory) -> None:
    server = fast_server
    admin, token, used = _used_token(server, api)
    server.restart()
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used


def test_clean_shutdown_writes_pending_usage(
    slow_server: RunningServer, api: ApiClientFactory
) -> None:
    server = slow_server
    admin, token, used = _used_token(server, api)
    assert _stored_last_used(server.database_url, token["id"]) is None
    server.restart()
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used


def test_last_used_at_moves_forward_with_later_use(
    fast_server: RunningServer, api: ApiClientFactory
) -> None:
    server = fast_server
    _admin, token, first = _used_token(server, api)
    client = api(server, token["value"])
    wait_until(lambda: client.get(f"{TOKENS}/self").json()["lastUsedAt"] > first)
