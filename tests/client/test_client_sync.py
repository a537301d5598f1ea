"""The blocking `Client` against the app in process: every operation, pages, every error type."""

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
    WRONG_ADDRESS,
    cannot_grant,
    host_bits,
    unknown_permissions,
)

from apitokens.client import Actor, BadRequest, Client, Forbidden, NotFound, Unauthorized


def assert_is_value(value: str | None) -> None:
    """Checks the shape of a token value without ever printing it."""
    assert value is not None
    assert re.fullmatch(r"apitk_[A-Za-z0-9_]+", value) is not None, "malformed token value"


def client_for(server: Any, value: str | None) -> Client:
    """A client of ``server`` authenticated with a token value just issued."""
    assert value is not None
    return Client(server.url, value, retries=0, transport=server.transport())


def test_self_token_is_the_bootstrapped_admin(client: Client) -> None:
    admin = client.self_token()
    assert admin.name == "admin"
    assert admin.permissions == tuple(ALL_PERMISSIONS)
    assert admin.allowed_cidr_blocks == ()
    assert admin.created_by == Actor(id="admin", type="system")
    assert (admin.expires_at, admin.value) == (None, None)
    by_id, by_self = client.get(admin.id), client.get("self")
    assert replace(by_id, last_used_at=None) == replace(by_self, last_used_at=None)


def test_create_returns_the_value_once(client: Client) -> None:
    admin_id = client.self_token().id
    created = client.create("deploy", [READ], ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    assert_is_value(created.value)
    assert created.name == "deploy"
    assert created.permissions == (READ,)
    assert created.allowed_cidr_blocks == ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32")
    assert created.created_by == Actor(id=admin_id, type="api-token")
    assert (created.expires_at, created.rotated_at, created.last_used_at) == (None, None, None)
    assert created.created_at.tzinfo is UTC
    fetched = client.get(created.id)
    assert fetched == replace(created, value=None)
    expiry = datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    expiring = client.create("expiring", [READ], expires_at=expiry)
    assert expiring.expires_at == expiry
    assert client.get(expiring.id).expires_at == expiry


def test_update_replaces_name_and_permissions_and_keeps_omitted_blocks(client: Client) -> None:
    token = client.create("before", [READ], ["192.168.0.0/16"])
    renamed = client.update(token.id, "after", [READ, MODIFY])
    assert (renamed.id, renamed.name) == (token.id, "after")
    assert sorted(renamed.permissions) == [MODIFY, READ]
    assert renamed.allowed_cidr_blocks == ("192.168.0.0/16",)
    assert renamed.value is None
    cleared = client.update(token.id, "after", [READ], allowed_cidr_blocks=[])
    assert (cleared.permissions, cleared.allowed_cidr_blocks) == ((READ,), ())
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


def test_bad_requests(client: Client) -> None:
    with pytest.raises(BadRequest) as cidr:
        client.create("bad", [READ], ["10.0.0.1/8"])
    assert (cidr.value.status_code, cidr.value.message) == (
        400,
        host_bits("10.0.0.1/8", "10.0.0.0/8"),
    )
    with pytest.raises(BadRequest) as permission:
        client.create("bad", ["NoSuchPermission"])
    assert (permission.value.status_code, permission.value.message) == (
        400,
        unknown_permissions("NoSuchPermission"),
    )
    with pytest.raises(BadRequest) as cursor:
        client.list(cursor="not-a-cursor")
    assert (cursor.value.status_code, cursor.value.message) == (400, BAD_CURSOR)


def test_unauthorized_and_forbidden(server: Any, client: Client) -> None:
    stranger = Client(server.url, UNKNOWN_VALUE, retries=0, transport=server.transport())
    with stranger, pytest.raises(Unauthorized) as unknown:
        stranger.list()
    assert (unknown.value.status_code, unknown.value.message) == (401, UNAUTHORIZED)
    reader = client.create("reader", [READ])
    assert reader.value is not None
    with Client(server.url, reader.value, retries=0, transport=server.transport()) as narrow:
        assert narrow.list(limit=1).results[0].id == reader.id
        with pytest.raises(Forbidden) as forbidden:
            narrow.create("escalate", [READ])
    assert (forbidden.value.status_code, forbidden.value.message) == (403, LACKS_MODIFY)
    modifier = client.create("modifier", [READ, MODIFY])
    with client_for(server, modifier.value) as limited, pytest.raises(Forbidden) as escalation:
        limited.create("escalate", ["UserModify"])
    assert (escalation.value.status_code, escalation.value.message) == (
        403,
        cannot_grant("UserModify"),
    )
    remote = client.create("remote", [READ], ["10.0.0.0/8", "2001:db8::/32"])
    with client_for(server, remote.value) as elsewhere, pytest.raises(Forbidden) as address:
        elsewhere.self_token()
    assert (address.value.status_code, address.value.message) == (
        403,
        WRONG_ADDRESS,
    )


def test_unknown_id_is_not_found(client: Client) -> None:
    calls = {
        "get": lambda: client.get(UNKNOWN_ID),
        "get malformed": lambda: client.get("not a uuid"),
        "update": lambda: client.update(UNKNOWN_ID, "x", [READ]),
        "rotate": lambda: client.rotate(UNKNOWN_ID),
        "delete": lambda: client.delete(UNKNOWN_ID),
    }
    for what, call in calls.items():
        with pytest.raises(NotFound) as info:
            call()
        assert (what, info.value.status_code, info.value.message) == (what, 404, NOT_FOUND)


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
    with Client(server.url, rotated.value, retries=0, transport=server.transport()) as fresh:
        assert fresh.self_token().id == token.id
    stale = Client(server.url, token.value, retries=0, transport=server.transport())
    with stale, pytest.raises(Unauthorized) as info:
        stale.self_token()
    assert (info.value.status_code, info.value.message) == (401, UNAUTHORIZED)


def test_rotate_self_with_grace_period_keeps_both_values(server: Any, client: Client) -> None:
    token = client.create("ci", [READ])
    assert token.value is not None
    with Client(server.url, token.value, retries=0, transport=server.transport()) as own:
        rotated = own.rotate("self", grace_period_seconds=60)
        assert rotated.id == token.id
        assert own.self_token().id == token.id  # the old value, inside the grace period
    assert rotated.value is not None
    with Client(server.url, rotated.value, retries=0, transport=server.transport()) as fresh:
        assert fresh.self_token().id == token.id


def test_delete_revokes_at_once(server: Any, client: Client) -> None:
    token = client.create("doomed", [READ])
    assert token.value is not None
    assert client.delete(token.id) is None
    with pytest.raises(NotFound):
        client.get(token.id)
    assert token.id not in [item.id for item in client.iter_tokens()]
    revoked = Client(server.url, token.value, retries=0, transport=server.transport())
    with revoked, pytest.raises(Unauthorized):
        revoked.self_token()
    narrow = client.create("self-destruct", [])
    assert narrow.value is not None
    with Client(server.url, narrow.value, retries=0, transport=server.transport()) as own:
        assert own.self_token().permissions == ()
        own.delete("self")
    with pytest.raises(NotFound):
        client.get(narrow.id)


def test_audit_verify_and_leak_report(server: Any, client: Client) -> None:
    reader = client.create("watched", [READ])
    assert reader.value is not None
    page = client.audit_events(token_id=reader.id)
    assert [(event.action, event.token_id) for event in page.results] == [
        ("token.create", reader.id)
    ]
    me = client.self_token()
    assert page.results[0].actor == Actor(me.id, "api-token")
    assert page.results[0].to_dict()["tokenId"] == reader.id
    with client_for(server, reader.value) as own:
        verified = own.verify([READ])
        assert (verified.token_id, verified.name, verified.permissions) == (
            reader.id,
            "watched",
            (READ,),
        )
        with pytest.raises(Forbidden):
            own.verify([MODIFY])
        with pytest.raises(BadRequest):
            own.verify(["NoSuchPermission"])
        own.report_leak(reader.value)
        with pytest.raises(Unauthorized):
            own.verify()
    leaks = list(client.iter_audit_events(page_size=1, action="token.leak_reported"))
    assert [(e.token_id, e.actor, e.detail) for e in leaks] == [
        (reader.id, None, {"name": "watched", "revoked": True})
    ]


def test_partial_update_against_the_server(client: Client) -> None:
    token = client.create("partial", [READ], ["10.0.0.0/8"], "2030-01-31T00:00:00Z")
    renamed = client.update(token.id, name="partial-2")
    assert (renamed.name, renamed.permissions, renamed.allowed_cidr_blocks) == (
        "partial-2",
        (READ,),
        ("10.0.0.0/8",),
    )
    assert renamed.expires_at == token.expires_at
    regranted = client.update(token.id, permissions=[MODIFY], expires_at=None)
    assert (regranted.name, regranted.permissions, regranted.expires_at) == (
        "partial-2",
        (MODIFY,),
        None,
    )
