"""The blocking `Client` against a real server: every operation, pages, every error type."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from api_messages import (
    ALL_PERMISSIONS,
    BAD_CURSOR,
    LACKS_MODIFY,
    MODIFY,
    NOT_FOUND,
    READ,
    UNAUTHORIZED,
    UNKNOWN_ID,
    UNKNOWN_VALUE,
    host_bits,
    unknown_permissions,
)

from apitokens.client import (
    Actor,
    BadRequest,
    Client,
    Forbidden,
    NotFound,
    Unauthorized,
)


def assert_is_value(value: str | None) -> None:
    """Checks the shape of a token value without ever printing it."""
    assert value is not None
    assert re.fullmatch(r"apitk_[A-Za-z0-9_]+", value) is not None, "malformed token value"


def test_self_token_is_the_bootstrapped_admin(client: Client) -> None:
    admin = client.self_token()
    assert admin.name == "admin"
    assert admin.permissions == tuple(ALL_PERMISSIONS)
    assert admin.allowed_cidr_blocks == ()
    assert admin.created_by == Actor(id="admin", type="system")
    assert admin.value is None
    by_id, by_self = client.get(admin.id), client.get("self")
    assert replace(by_id, last_used_at=None) == replace(by_self, last_used_at=None)


def test_create_returns_the_value_once(client: Client) -> None:
    admin_id = client.self_token().id
    created = client.create("deploy", [READ], ["10.0.0.0/8", "2001:db8::/32"])
    assert_is_value(created.value)
    assert created.name == "deploy"
    assert created.permissions == (READ,)
    assert created.allowed_cidr_blocks == ("10.0.0.0/8", "2001:db8::/32")
    assert created.created_by == Actor(id=admin_id, type="api-token")
    assert created.expires_at is None
    assert created.created_at.tzinfo is UTC
    fetched = client.get(created.id)
    assert fetched.value is None
    assert fetched.name == "deploy"
    assert fetched.created_at == created.created_at


def test_create_with_expiry_keeps_it_to_the_millisecond(client: Client) -> None:
    expiry = datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    created = client.create("expiring", [READ], expires_at=expiry)
    assert created.expires_at == expiry
    assert client.get(created.id).expires_at == expiry


def test_update_replaces_name_and_permissions_and_keeps_omitted_blocks(client: Client) -> None:
    token = client.create("before", [READ], ["192.168.0.0/16"])
    renamed = client.update(token.id, "after", [READ, MODIFY])
    assert (renamed.id, renamed.name) == (token.id, "after")
    assert set(renamed.permissions) == {READ, MODIFY}
    assert renamed.allowed_cidr_blocks == ("192.168.0.0/16",)
    assert renamed.value is None
    cleared = client.update(token.id, "after", [READ], allowed_cidr_blocks=[])
    assert cleared.permissions == (READ,)
    assert cleared.allowed_cidr_blocks == ()
    assert client.get(token.id) == cleared


def test_pages_cover_every_token_once_newest_first(client: Client) -> None:
    admin_id = client.self_token().id
    created = [client.create(f"page-{index}", [READ]).id for index in range(7)]
    expected = [*reversed(created), admin_id]
    first = client.list(limit=3)
    second = client.list(limit=3, cursor=first.next)
    third = client.list(limit=3, cursor=second.next)
    assert [len(page.results) for page in (first, second, third)] == [3, 3, 2]
    assert third.next is None
    listed = [token.id for page in (first, second, third) for token in page.results]
    assert listed == expected
    assert [token.id for token in client.iter_tokens(page_size=3)] == expected
    assert all(token.value is None for token in client.iter_tokens(page_size=3))


def test_bad_cidr_is_bad_request(client: Client) -> None:
    with pytest.raises(BadRequest) as info:
        client.create("bad", [READ], ["10.0.0.1/8"])
    assert info.value.status_code == 400
    assert info.value.message == host_bits("10.0.0.1/8", "10.0.0.0/8")


def test_unknown_permission_is_bad_request(client: Client) -> None:
    with pytest.raises(BadRequest) as info:
        client.create("bad", ["NoSuchPermission"])
    assert info.value.status_code == 400
    assert info.value.message == unknown_permissions("NoSuchPermission")


def test_bad_cursor_is_bad_request(client: Client) -> None:
    with pytest.raises(BadRequest) as info:
        client.list(cursor="not-a-cursor")
    assert info.value.status_code == 400
    assert info.value.message == BAD_CURSOR


def test_unknown_key_is_unauthorized(server: Any) -> None:
    stranger = Client(server.url, UNKNOWN_VALUE, retries=0)
    with stranger, pytest.raises(Unauthorized) as info:
        stranger.list()
    assert (info.value.status_code, info.value.message) == (401, UNAUTHORIZED)
    assert info.value.message == UNAUTHORIZED


def test_missing_permission_is_forbidden(server: Any, client: Client) -> None:
    reader = client.create("reader", [READ])
    assert reader.value is not None
    with Client(server.url, reader.value, retries=0) as narrow:
        assert narrow.list(limit=1).results[0].id == reader.id
        with pytest.raises(Forbidden) as info:
            narrow.create("escalate", [READ])
    assert info.value.status_code == 403
    assert info.value.message == LACKS_MODIFY


def test_unknown_id_is_not_found(client: Client) -> None:
    calls = {
        UNKNOWN_ID: lambda: client.get(UNKNOWN_ID),
        "not a uuid": lambda: client.get("not a uuid"),
        "update": lambda: client.update(UNKNOWN_ID, "x", [READ]),
        "rotate": lambda: client.rotate(UNKNOWN_ID),
        "delete": lambda: client.delete(UNKNOWN_ID),
    }
    for what, call in calls.items():
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.status_code == 404
        assert (what, info.value.message) == (what, NOT_FOUND)


def test_rotate_issues_a_new_value_and_retires_the_old(server: Any, client: Client) -> None:
    token = client.create("rotating", [READ], ["127.0.0.0/8"])
    assert token.value is not None
    rotated = client.rotate(token.id)
    assert_is_value(rotated.value)
    assert rotated.value != token.value
    assert (rotated.id, rotated.name, rotated.permissions) == (token.id, "rotating", (READ,))
    assert rotated.allowed_cidr_blocks == ("127.0.0.0/8",)
    assert rotated.rotated_at is not None
    assert rotated.value is not None
    with Client(server.url, rotated.value, retries=0) as fresh:
        assert fresh.self_token().id == token.id
    stale = Client(server.url, token.value, retries=0)
    with stale, pytest.raises(Unauthorized) as info:
        stale.self_token()
    assert (info.value.status_code, info.value.message) == (401, UNAUTHORIZED)


def test_rotate_self_with_grace_period_keeps_both_values(server: Any, client: Client) -> None:
    token = client.create("ci", [READ])
    assert token.value is not None
    with Client(server.url, token.value, retries=0) as own:
        rotated = own.rotate("self", grace_period_seconds=60)
        assert rotated.id == token.id
        assert own.self_token().id == token.id  # the old value, inside the grace period
    assert rotated.value is not None
    with Client(server.url, rotated.value, retries=0) as fresh:
        assert fresh.self_token().id == token.id


def test_delete_revokes_at_once(server: Any, client: Client) -> None:
    token = client.create("doomed", [READ])
    assert token.value is not None
    assert client.delete(token.id) is None
    with pytest.raises(NotFound):
        client.get(token.id)
    assert token.id not in [item.id for item in client.iter_tokens()]
    revoked = Client(server.url, token.value, retries=0)
    with revoked, pytest.raises(Unauthorized):
        revoked.self_token()


def test_a_narrow_token_deletes_itself(server: Any, client: Client) -> None:
    token = client.create("self-destruct", [])
    assert token.value is not None
    with Client(server.url, token.value, retries=0) as own:
        assert own.self_token().permissions == ()
        own.delete("self")
    with pytest.raises(NotFound):
        client.get(token.id)
