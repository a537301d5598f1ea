"""lastUsedAt: set by use, written in batches, and kept across a clean restart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import TIME_FORMAT, TOKENS, create

from apitokens.storage.sql import SqlStore
from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

pytestmark = pytest.mark.app_backends("memory", "sqlite", "postgresql")


def _stored_last_used(server: InProcessServer, token_id: str) -> Any:
    """``lastUsedAt`` as the store holds it, read apart from the app's own services."""
    store = server.store or SqlStore(server.database_url)
    try:
        with store.unit() as unit:
            token = unit.tokens.find(token_id)
    finally:
        if store is not server.store:
            store.close()
    assert token is not None
    return token.last_used_at


def _used_token(
    server: InProcessServer, api: ApiClientFactory
) -> tuple[httpx.Client, dict[str, Any], str]:
    """A new token, used once; returns the admin client, the token and its lastUsedAt."""
    admin = api(server, server.admin)
    token = create(admin, "ci")
    assert token["lastUsedAt"] is None
    used = api(server, token["value"]).get(f"{TOKENS}/self").json()["lastUsedAt"]
    return admin, token, used


def test_last_used_at_is_set_by_a_use(server: InProcessServer, api: ApiClientFactory) -> None:
    admin, token, used = _used_token(server, api)
    assert TIME_FORMAT.match(used)
    assert used >= token["createdAt"]
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used
    listed = {item["id"]: item for item in admin.get(TOKENS).json()["results"]}
    assert listed[token["id"]]["lastUsedAt"] == used


def test_last_used_at_is_written_to_the_database(
    server: InProcessServer, api: ApiClientFactory
) -> None:
    _admin, token, _used = _used_token(server, api)
    assert _stored_last_used(server, token["id"]) is None  # pending until the next flush
    server.flush()
    assert _stored_last_used(server, token["id"]) is not None


def test_last_used_at_survives_a_restart(server: InProcessServer, api: ApiClientFactory) -> None:
    admin, token, used = _used_token(server, api)
    server.flush()
    server.restart()
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used


def test_clean_shutdown_writes_pending_usage(
    server: InProcessServer, api: ApiClientFactory
) -> None:
    admin, token, used = _used_token(server, api)
    assert _stored_last_used(server, token["id"]) is None
    server.restart()
    assert admin.get(f"{TOKENS}/{token['id']}").json()["lastUsedAt"] == used


def test_last_used_at_moves_forward_with_later_use(
    server: InProcessServer, api: ApiClientFactory
) -> None:
    _admin, token, first = _used_token(server, api)
    client = api(server, token["value"])
    server.clock.advance(1)
    assert client.get(f"{TOKENS}/self").json()["lastUsedAt"] > first
