"""``apitokens tokens`` run as a subprocess against a real server."""

from __future__ import annotations

import json
import re
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


def server_message(call: Any) -> str:
    """The message the server gives for a call, as the client sees it."""
    try:
        call()
    except APITokensError as exc:
        return str(exc)
    raise AssertionError("the call was expected to fail")


def test_create_with_permissions_and_cidr_as_json(tokens: RunTokens, admin_client: Client) -> None:
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


def test_create_as_table_prints_the_value_last(server: Any, tokens: RunTokens) -> None:
    result = tokens("create", "--name", "table-token", "--permission", READ)
    assert result.returncode == 0
    assert result.stderr == REMINDER
    value = result.stdout.splitlines()[-1]
    assert is_value(value)
    assert "table-token" in result.stdout
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
    for index in range(5):
        assert f"listed-{index}" in table.stdout


def test_get_self(tokens: RunTokens, admin_client: Client) -> None:
    admin = admin_client.self_token().to_dict()
    shown = json_of(tokens("get", "self", "--json"))
    del shown["lastUsedAt"], admin["lastUsedAt"]  # moves with every use
    assert shown == admin
    table = tokens("get", "self")
    assert (table.returncode, table.stderr) == (0, "")
    assert admin["id"] in table.stdout
    assert "system admin" in table.stdout


def test_update_keeps_what_is_not_given(tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("before", [READ], ["192.168.0.0/16"])
    renamed = json_of(tokens("update", token.id, "--name", "after", "--json"))
    assert (renamed["name"], renamed["permissions"]) == ("after", [READ])
    assert renamed["allowedCIDRBlocks"] == ["192.168.0.0/16"]
    cleared = json_of(tokens("update", token.id, "--clear-cidrs", "-p", MODIFY, "--json"))
    assert (cleared["name"], cleared["permissions"]) == ("after", [MODIFY])
    assert cleared["allowedCIDRBlocks"] == []
    assert "value" not in cleared


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
    stale = Client(server.url, token.value, retries=0)
    with stale:
        assert server_message(stale.self_token).endswith("(HTTP 401)")


def test_rotate_self_as_table(server: Any, tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("ci", [])
    result = tokens("rotate", "self", token=token.value)
    assert (result.returncode, result.stderr) == (0, REMINDER)
    new_value = result.stdout.splitlines()[-1]
    with Client(server.url, new_value, retries=0) as fresh:
        assert fresh.self_token().id == token.id


def test_delete(tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("doomed", [READ])
    result = tokens("delete", token.id)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"Deleted token {token.id}.\n",
        "",
    )
    again = tokens("get", token.id)
    expected = server_message(lambda: admin_client.get(token.id))
    assert expected.endswith("(HTTP 404)")
    assert (again.returncode, again.stdout, again.stderr) == (1, "", f"error: {expected}\n")
    deleted = json_of(tokens("delete", "self", "--json", token=admin_client.create("x", []).value))
    assert deleted == {"id": "self", "deleted": True}


def test_api_errors_exit_1_with_the_server_message(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    bad = tokens("create", "--name", "bad", "--cidr", "10.0.0.1/8")
    expected = server_message(lambda: admin_client.create("bad", [], ["10.0.0.1/8"]))
    assert expected.endswith("(HTTP 400)")
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, "", f"error: {expected}\n")
    stranger = tokens("list", token="apitk_unknown_value")
    assert (stranger.returncode, stranger.stdout) == (1, "")
    assert stranger.stderr.startswith("error: ")
    assert stranger.stderr.endswith("(HTTP 401)\n")
    reader = admin_client.create("reader", [READ]).value
    forbidden = tokens("delete", UNKNOWN_ID, token=reader)
    assert forbidden.returncode == 1
    assert MODIFY in forbidden.stderr
    assert forbidden.stderr.endswith("(HTTP 403)\n")


def test_unreachable_server_exits_1(tokens: RunTokens) -> None:
    result = tokens("list", url="http://127.0.0.1:9")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: GET http://127.0.0.1:9/api-tokens failed: ")


def test_usage_errors_exit_2(tokens: RunTokens) -> None:
    no_token = tokens("list", token=None)
    assert (no_token.returncode, no_token.stdout) == (2, "")
    assert no_token.stderr == "error: no token: pass --token or set APITOKENS_TOKEN.\n"
    assert tokens("list", "--no-such-option").returncode == 2
    assert tokens("create", "--permission", READ).returncode == 2  # --name is required
    bad_time = tokens("create", "--name", "x", "--expires-at", "tomorrow")
    assert bad_time.returncode == 2
    assert "RFC 3339" in bad_time.stderr
    both = tokens("update", "self", "--cidr", "10.0.0.0/8", "--clear-cidrs")
    assert both.returncode == 2


def test_values_never_leak_into_listings(server: Any, tokens: RunTokens) -> None:
    for args in (("list",), ("list", "--json"), ("get", "self"), ("get", "self", "--json")):
        result = tokens(*args)
        assert result.returncode == 0
        assert server.admin not in result.stdout + result.stderr
