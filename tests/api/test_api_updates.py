"""Update semantics: name and permissions replaced, omitted allowedCIDRBlocks kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import MODIFY, READ, TOKENS, body, create

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

BLOCKS = ["10.0.0.0/8", "2001:db8::/32"]


@pytest.fixture
def token(admin: httpx.Client) -> dict[str, Any]:
    return create(admin, "ci", [READ], allowedCIDRBlocks=BLOCKS)


def _update(admin: httpx.Client, token: dict[str, Any], **payload: Any) -> dict[str, Any]:
    response = admin.post(f"{TOKENS}/{token['id']}", json=payload)
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()
    return updated


def test_omitted_blocks_are_kept(admin: httpx.Client, token: dict[str, Any]) -> None:
    updated = _update(admin, token, name="renamed", permissions=[READ])
    assert updated["allowedCIDRBlocks"] == BLOCKS
    assert admin.get(f"{TOKENS}/{token['id']}").json()["allowedCIDRBlocks"] == BLOCKS


def test_null_blocks_are_kept_like_omitted_ones(admin: httpx.Client, token: dict[str, Any]) -> None:
    updated = _update(admin, token, **body("ci", [READ], allowedCIDRBlocks=None))
    assert updated["allowedCIDRBlocks"] == BLOCKS


def test_empty_blocks_clear_them(admin: httpx.Client, token: dict[str, Any]) -> None:
    updated = _update(admin, token, **body("ci", [READ], allowedCIDRBlocks=[]))
    assert updated["allowedCIDRBlocks"] == []
    assert admin.get(f"{TOKENS}/{token['id']}").json()["allowedCIDRBlocks"] == []


def test_given_blocks_replace_them(admin: httpx.Client, token: dict[str, Any]) -> None:
    updated = _update(admin, token, **body("ci", [READ], allowedCIDRBlocks=["192.0.2.1"]))
    assert updated["allowedCIDRBlocks"] == ["192.0.2.1/32"]


def test_permissions_are_replaced_not_merged(admin: httpx.Client, token: dict[str, Any]) -> None:
    assert _update(admin, token, **body("ci", [MODIFY]))["permissions"] == [MODIFY]
    assert _update(admin, token, **body("ci", []))["permissions"] == []


def test_name_is_replaced_and_trimmed(admin: httpx.Client, token: dict[str, Any]) -> None:
    assert _update(admin, token, **body("  deploy  ", [READ]))["name"] == "deploy"


def test_update_keeps_identity_creation_and_rotation(
    admin: httpx.Client, token: dict[str, Any]
) -> None:
    updated = _update(admin, token, **body("renamed", [READ]))
    for field in ("id", "createdAt", "createdBy", "rotatedAt", "expiresAt"):
        assert updated[field] == token[field]
    assert updated["updatedAt"] >= token["updatedAt"]


def test_update_keeps_the_value_working(
    server: InProcessServer, admin: httpx.Client, token: dict[str, Any], api: ApiClientFactory
) -> None:
    _update(admin, token, **body("renamed", [READ], allowedCIDRBlocks=[]))
    assert api(server, token["value"]).get(f"{TOKENS}/self").json()["name"] == "renamed"


def test_omitted_expiry_is_kept(admin: httpx.Client) -> None:
    token = create(admin, "expiring", expiresAt="2999-01-01T00:00:00Z")
    assert _update(admin, token, **body("renamed"))["expiresAt"] == "2999-01-01T00:00:00.000Z"


def test_null_expiry_removes_it(admin: httpx.Client) -> None:
    token = create(admin, "expiring", expiresAt="2999-01-01T00:00:00Z")
    assert _update(admin, token, **body("renamed", expiresAt=None))["expiresAt"] is None


def test_new_permissions_take_effect_at_once(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = create(admin, "reader", [READ])
    client = api(server, token["value"])
    assert client.get(TOKENS).status_code == 200  # now cached in memory
    _update(admin, token, **body("reader", []))
    assert client.get(TOKENS).status_code == 403
