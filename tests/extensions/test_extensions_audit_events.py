"""``GET /audit-events``: every change and security event, who/what/when/where, never a
value; filters by token id and action; pages like the token listing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from extension_helpers import (
    READ,
    audit_events,
    create_token,
    flushed_event,
    key,
    well_formed,
)

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory

pytestmark = pytest.mark.app_backends("memory", "sqlite", "postgresql")

FIELDS = {"id", "action", "tokenId", "actor", "clientIP", "at", "detail"}


def _admin_id(admin: httpx.Client) -> str:
    token_id: str = admin.get("/api-tokens/self").json()["id"]
    return token_id


def test_each_change_is_recorded_with_actor_address_and_time(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    forwarded = {"X-Forwarded-For": "192.0.2.44"}
    token = admin.post(
        "/api-tokens", json={"name": "audited", "permissions": [READ]}, headers=forwarded
    ).json()
    path = f"/api-tokens/{token['id']}"
    admin.post(path, json={"name": "renamed", "permissions": [READ]}, headers=forwarded)
    rotated = admin.post(f"{path}/rotate", headers=forwarded).json()
    admin.delete(path, headers=forwarded)

    events = audit_events(admin, tokenId=token["id"])
    actions = [event["action"] for event in events]
    assert actions == ["token.delete", "token.rotate", "token.update", "token.create"]
    actor = {"id": _admin_id(admin), "type": "api-token"}
    for event in events:
        assert set(event) == FIELDS
        assert event["tokenId"] == token["id"]
        assert event["actor"] == actor
        assert event["clientIP"] == "192.0.2.44"
        assert event["at"].endswith("Z")
    listing = admin.get("/audit-events").text
    for value in (token["value"], rotated["value"], ext_server.admin):
        assert value not in listing


def test_filters_and_pagination(admin: httpx.Client) -> None:
    ids = [create_token(admin, f"page-{n}")["id"] for n in range(5)]
    for token_id in ids[:2]:
        admin.post(f"/api-tokens/{token_id}/rotate")

    creates = audit_events(admin, action="token.create")
    assert [event["tokenId"] for event in creates[:5]] == ids[::-1]  # newest first
    assert {event["action"] for event in creates} == {"token.create"}
    one = audit_events(admin, tokenId=ids[0], action="token.rotate")
    assert [(event["tokenId"], event["action"]) for event in one] == [(ids[0], "token.rotate")]
    assert audit_events(admin, tokenId="no-such-token") == []

    everything = audit_events(admin, limit=1000)
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = admin.get("/audit-events", params=params).json()
        assert len(page["results"]) <= 2
        seen.extend(page["results"])
        if page.get("next") is None:
            break
        params["cursor"] = page["next"]
    assert [event["id"] for event in seen] == [event["id"] for event in everything]
    assert len({event["id"] for event in seen}) == len(seen) >= 7


def test_reading_needs_the_read_permission_and_a_sound_query(
    ext_server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"cursor": "garbage!"}, {"action": "nope"}):
        response = admin.get("/audit-events", params=params)
        assert response.status_code == 400, params
        assert response.json()["message"]
    assert api(ext_server).get("/audit-events").status_code == 401
    narrow = create_token(admin, "narrow", ("AlertRead",))
    forbidden = api(ext_server, narrow["value"]).get("/audit-events")
    assert forbidden.status_code == 403
    assert READ in forbidden.json()["message"]
    reader = create_token(admin, "reader", (READ,))
    assert api(ext_server, reader["value"]).get("/audit-events").status_code == 200


def test_failure_bursts_are_recorded(ext_server_factory: AppFactory, api: ApiClientFactory) -> None:
    server = ext_server_factory(env={"APITOKENS_AUTH_FAILURE_LIMIT": "3"})
    admin = api(server, server.admin)
    bad = {**key(well_formed("F")), "X-Forwarded-For": "198.51.100.66"}
    for _ in range(3):
        assert admin.get("/verify", headers=bad).status_code == 401
    limited = admin.get("/api-tokens", headers={"X-Forwarded-For": "198.51.100.66"})
    assert limited.status_code == 429
    event = flushed_event(server, admin, "auth.failure_burst")
    assert event["clientIP"] == "198.51.100.66"
    assert event["tokenId"] is None
    assert event["detail"]["failures"] == 3
