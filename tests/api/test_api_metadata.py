"""Who made and changed a token (createdBy/updatedBy) and when (RFC 3339, UTC, ms, `Z`)."""

from __future__ import annotations

import httpx
from api_support import MANAGER, READ, TIME_FORMAT, TOKENS, body, create

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory


def _now_ms(server: InProcessServer) -> str:
    now = server.clock.now()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _self_id(client: httpx.Client) -> str:
    token_id: str = client.get(f"{TOKENS}/self").json()["id"]
    return token_id


def test_bootstrap_token_is_made_by_the_system(admin: httpx.Client) -> None:
    token = admin.get(f"{TOKENS}/self").json()
    assert token["name"] == "admin"
    assert token["createdBy"] == {"id": "admin", "type": "system"}
    assert token["updatedBy"] == {"id": "admin", "type": "system"}


def test_token_made_through_the_api_is_made_by_the_calling_token(admin: httpx.Client) -> None:
    token = create(admin, "ci")
    actor = {"id": _self_id(admin), "type": "api-token"}
    assert token["createdBy"] == actor
    assert token["updatedBy"] == actor


def test_update_records_the_updating_token(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    manager = api(server, create(admin, "manager", MANAGER)["value"])
    token = create(admin, "ci", [READ])
    updated = manager.post(f"{TOKENS}/{token['id']}", json=body("renamed", [READ])).json()
    assert updated["updatedBy"] == {"id": _self_id(manager), "type": "api-token"}
    assert updated["createdBy"] == {"id": _self_id(admin), "type": "api-token"}


def test_self_rotation_records_the_token_itself(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = create(admin, "ci")
    rotated = api(server, token["value"]).post(f"{TOKENS}/self/rotate").json()
    assert rotated["updatedBy"] == {"id": token["id"], "type": "api-token"}
    assert rotated["createdBy"] == token["createdBy"]


def test_new_token_times_are_rfc3339_utc_milliseconds(
    server: InProcessServer, admin: httpx.Client
) -> None:
    before = _now_ms(server)
    token = create(admin, "ci")
    after = _now_ms(server)
    assert TIME_FORMAT.match(token["createdAt"])
    assert before <= token["createdAt"] <= after
    assert token["updatedAt"] == token["createdAt"]


def test_every_time_field_uses_the_contract_format(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = create(admin, "ci", expiresAt="2999-06-01T12:00:00+02:00")
    rotated = admin.post(f"{TOKENS}/{token['id']}/rotate").json()
    api(server, rotated["value"]).get(f"{TOKENS}/self")
    shown = admin.get(f"{TOKENS}/{token['id']}").json()
    for field in ("createdAt", "updatedAt", "rotatedAt", "lastUsedAt", "expiresAt"):
        assert TIME_FORMAT.match(shown[field]), (field, shown[field])
    assert shown["expiresAt"] == "2999-06-01T10:00:00.000Z"


def test_listed_times_use_the_contract_format(admin: httpx.Client) -> None:
    create(admin, "ci")
    for token in admin.get(TOKENS).json()["results"]:
        assert TIME_FORMAT.match(token["createdAt"])
        assert TIME_FORMAT.match(token["updatedAt"])
