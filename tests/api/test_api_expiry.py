"""Expiry (extension): a token whose expiresAt has passed gets 401 saying so, but stays listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_support import READ, TOKENS, create, error

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

LIFETIME = timedelta(seconds=2)


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _step_past(server: InProcessServer, expires_at: str) -> None:
    deadline = datetime.strptime(expires_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    server.clock.advance_past(deadline, margin=0.05)


@pytest.fixture
def expired(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> tuple[dict[str, Any], httpx.Client]:
    """A token that worked, then expired; and a client that sends it."""
    token = create(admin, "short", [READ], expiresAt=_rfc3339(server.clock.now() + LIFETIME))
    client = api(server, token["value"])
    assert client.get(TOKENS).status_code == 200
    _step_past(server, token["expiresAt"])
    return token, client


def test_expires_at_is_returned(admin: httpx.Client) -> None:
    token = create(admin, "later", expiresAt="2999-01-01T00:00:00.000Z")
    assert token["expiresAt"] == "2999-01-01T00:00:00.000Z"


def test_expired_token_is_refused_saying_it_expired(
    expired: tuple[dict[str, Any], httpx.Client],
) -> None:
    _token, client = expired
    assert "expired" in error(client.get(TOKENS), 401)
    assert "expired" in error(client.get(f"{TOKENS}/self"), 401)
    assert "expired" in error(client.post(f"{TOKENS}/self/rotate"), 401)


def test_expired_token_is_still_listed(
    admin: httpx.Client, expired: tuple[dict[str, Any], httpx.Client]
) -> None:
    token, _client = expired
    listed = admin.get(TOKENS, params={"limit": 1000}).json()["results"]
    assert token["id"] in {item["id"] for item in listed}
    assert admin.get(f"{TOKENS}/{token['id']}").json()["expiresAt"] == token["expiresAt"]


def test_extending_an_expired_token_revives_it(
    admin: httpx.Client, expired: tuple[dict[str, Any], httpx.Client]
) -> None:
    token, client = expired
    response = admin.post(
        f"{TOKENS}/{token['id']}",
        json={"name": "short", "permissions": [READ], "expiresAt": "2999-01-01T00:00:00Z"},
    )
    assert response.status_code == 200
    assert client.get(TOKENS).status_code == 200
