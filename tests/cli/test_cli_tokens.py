"""``apitokens tokens`` run as a subprocess against a real server.

Each test starts a server, so related checks share a test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tokens_cli import Result, RunTokens

from apitokens.client import APITokensError, Client

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
REMINDER = "Store this value now: it will not be shown again.\n"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def is_value(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"apitk_[A-Za-z0-9_]+", value) is not None


def json_of(result: Result) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def server_error(call: Callable[[], object]) -> str:
    """How the client describes the failure of ``call``: ``"<message> (HTTP <status>)"``."""
    try:
        call()
    except APITokensError as exc:
        return str(exc)
    raise AssertionError("the call was expected to fail")


def test_create_with_permissions_and_cidr(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    admin_id = admin_client.self_token().id
    result = tokens(
        "create", "--name", "deploy", "-p", READ, "--permission", MODIFY,
        "--cidr", "10.0.0.0/8", "--cidr", "2001:db8::/32", "--json",
    )  # fmt: skip
    assert result.stderr == REMINDER
    created = json_of(result)
    assert is_value(created.pop("value"))
    assert created["name"] == "deploy"
    assert sorted(created["permissions"]) == [MODIFY, READ]
    assert created["allowedCIDRBlocks"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert created["createdBy"] == {"id": admin_id, "type": "api-token"}
    assert created["expiresAt"] is None
    assert admin_client.get(created["id"]).to_dict() == created

    table = tokens("create", "--name", "table-token", "--permission", READ)
    assert (table.returncode, table.stderr) == (0, REMINDER)
    value = table.stdout.splitlines()[-1]
    assert is_value(value)
    assert "table-token" in table.stdout
    with Client(server.url, value, retries=0) as own:
        assert own.self_token().name == "table-token"


def test_list_follows_pages(tokens: RunTokens, admin_client: Client) -> None:
    admin_id = admin_client.self_token().id
    created = [admin_client.create(f"listed-{index}", [READ]).id for index in range(5)]
    everything = [*reversed(created), admin_id]
    listed = json_of(tokens("list", "--all", "--page-size", "2", "--json"))
    assert [item["id"] for item in listed] == everything
    assert all("value" not in item for item in listed)
    limited = tokens("list", "--limit", "3", "--page-size", "2", "--json")
    assert [item["id"] for item in json_of(limited)] == everything[:3]
    assert limited.stderr == "Showing the first 3 tokens; use --all or a larger --limit.\n"
    table = tokens("list")
    assert (table.returncode, table.stderr) == (0, "")
    for token_id in everything:
        assert token_id in table.stdout


def test_get_self_never_shows_the_value(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    admin = admin_client.self_token().to_dict()
    shown = json_of(tokens("get", "self", "--json"))
    del shown["lastUsedAt"], admin["lastUsedAt"]  # moves with every use
    assert shown == admin
    table = tokens("get", "self")
    assert (table.returncode, table.stderr) == (0, "")
    assert admin["id"] in table.stdout
    assert "system admin" in table.stdout
    for args in (("list",), ("list", "--json"), ("get", "self"), ("get", "self", "--json")):
        result = tokens(*args)
        assert result.returncode == 0
        assert server.admin not in result.stdout + result.stderr


def test_update_keeps_what_is_not_given(tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("before", [READ], ["192.168.0.0/16"], "2030-01-31T00:00:00Z")
    renamed = json_of(tokens("update", token.id, "--name", "after", "--json"))
    assert (renamed["name"], renamed["permissions"]) == ("after", [READ])
    assert renamed["allowedCIDRBlocks"] == ["192.168.0.0/16"]
    assert renamed["expiresAt"] == "2030-01-31T00:00:00.000Z"
    assert "value" not in renamed
    cleared = json_of(
        tokens("update", token.id, "--clear-cidrs", "-p", MODIFY, "--expires-at", "never", "--json")
    )
    assert (cleared["name"], cleared["permissions"]) == ("after", [MODIFY])
    assert (cleared["allowedCIDRBlocks"], cleared["expiresAt"]) == ([], None)
    moved = json_of(
        tokens("update", token.id, "--expires-at", "2031-06-01T02:00:00+02:00", "--json")
    )
    assert moved["expiresAt"] == "2031-06-01T00:00:00.000Z"


def test_rotate_prints_a_new_value_that_replaces_the_old(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    token = admin_client.create("rotating", [READ])
    assert token.value is not None
    result = tokens("rotate", token.id, "--json")
    assert result.stderr == REMINDER
    rotated = json_of(result)
    new_value = rotated.pop("value")
    assert is_value(new_value)
    assert new_value != token.value
    assert (rotated["id"], rotated["name"]) == (token.id, "rotating")
    assert rotated["rotatedAt"] is not None
    with Client(server.url, new_value, retries=0) as fresh:
        assert fresh.self_token().id == token.id
    stale = tokens("get", "self", token=token.value)
    with Client(server.url, token.value, retries=0) as old:
        assert (stale.returncode, stale.stderr) == (1, f"error: {server_error(old.self_token)}\n")

    own = tokens("rotate", "self", token=new_value)  # a token rotates itself, as a table
    assert (own.returncode, own.stderr) == (0, REMINDER)
    with Client(server.url, own.stdout.splitlines()[-1], retries=0) as newest:
        assert newest.self_token().id == token.id


def test_delete(tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("doomed", [READ])
    result = tokens("delete", token.id)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"Deleted token {token.id}.\n",
        "",
    )
    again = tokens("get", token.id)
    expected = server_error(lambda: admin_client.get(token.id))
    assert expected.endswith("(HTTP 404)")
    assert (again.returncode, again.stdout, again.stderr) == (1, "", f"error: {expected}\n")
    own = admin_client.create("self-destruct", [])
    deleted = json_of(tokens("delete", "self", "--json", token=own.value))
    assert deleted == {"id": "self", "deleted": True}
    assert server_error(lambda: admin_client.get(own.id)).endswith("(HTTP 404)")


def test_api_errors_exit_1_with_the_server_message(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    bad = tokens("create", "--name", "bad", "--cidr", "10.0.0.1/8")
    expected = server_error(lambda: admin_client.create("bad", [], ["10.0.0.1/8"]))
    assert expected.endswith("(HTTP 400)")
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, "", f"error: {expected}\n")

    stranger = tokens("list", token="apitk_unknown_value")
    with Client(server.url, "apitk_unknown_value", retries=0) as unknown:
        expected = server_error(unknown.list)
    assert expected.endswith("(HTTP 401)")
    assert (stranger.returncode, stranger.stdout, stranger.stderr) == (
        1,
        "",
        f"error: {expected}\n",
    )

    reader = admin_client.create("reader", [READ])
    assert reader.value is not None
    forbidden = tokens("delete", UNKNOWN_ID, token=reader.value)
    with Client(server.url, reader.value, retries=0) as narrow:
        expected = server_error(lambda: narrow.delete(UNKNOWN_ID))
    assert expected == f"this API token lacks the {MODIFY} permission (HTTP 403)"
    assert (forbidden.returncode, forbidden.stderr) == (1, f"error: {expected}\n")


def test_connection_options_before_or_after_the_command(server: Any, tokens: RunTokens) -> None:
    after = tokens("get", "self", "--json", "--url", server.url, "--token", server.admin,
                   url="http://127.0.0.1:9", token="apitk_wrong")  # fmt: skip
    assert json_of(after)["name"] == "admin"
    before = tokens("--url", server.url, "--token", server.admin, "get", "self", "--json",
                    url=None, token=None)  # fmt: skip
    assert json_of(before)["name"] == "admin"
