"""``apitokens tokens`` against a real server process.

The commands run in this process through the executable's entry point (the ``tokens`` and
``apitokens`` fixtures); the installed executable itself runs in
``test_create_with_permissions_and_cidr``, on a terminal, and for ``backup``. Each test
starts a server, so related checks share a test.
"""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tokens_cli import Result, RunApitokens, RunTokens, cli_env, run_apitokens, run_main

from apitokens.client import APITokensError, Client, NotFound

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
REMINDER = "Store this value now: it will not be shown again.\n"
TOKEN_HINT = "; check the token (apitokens login, or APITOKENS_TOKEN)"
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
    server: Any, tokens: RunTokens, admin_client: Client, tmp_path: Path
) -> None:
    admin_id = admin_client.self_token().id
    args = [
        "tokens", "create", "--name", "deploy", "-p", READ, "--permission", MODIFY,
        "--cidr", "10.0.0.0/8", "--cidr", "2001:db8::/32", "--json",
    ]  # fmt: skip
    # The installed executable, as a user runs it.
    result = run_apitokens(args, cli_env(server.url, server.admin, tmp_path / "home"))
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
    unconfirmed = tokens("rotate", token.id, "--json")  # no terminal, no --yes: refused
    assert (unconfirmed.returncode, unconfirmed.stdout, unconfirmed.stderr) == (
        2,
        "",
        "error: refusing without confirmation: stdin is not a terminal; add --yes\n",
    )
    result = tokens("rotate", token.id, "--json", "--yes")
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
        expected = f"error: {server_error(old.self_token)}{TOKEN_HINT}\n"
        assert (stale.returncode, stale.stderr) == (4, expected)

    own = tokens("rotate", "self", "-y", token=new_value)  # a token rotates itself, as a table
    assert (own.returncode, own.stderr) == (0, REMINDER)
    with Client(server.url, own.stdout.splitlines()[-1], retries=0) as newest:
        assert newest.self_token().id == token.id


def test_delete(tokens: RunTokens, admin_client: Client) -> None:
    token = admin_client.create("doomed", [READ])
    refused = tokens("delete", token.id)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert admin_client.get(token.id).id == token.id  # still there
    result = tokens("delete", token.id, "--yes")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"Deleted token {token.id}.\n",
        "",
    )
    again = tokens("get", token.id)
    expected = server_error(lambda: admin_client.get(token.id))
    assert expected.endswith("(HTTP 404)")
    assert (again.returncode, again.stdout, again.stderr) == (3, "", f"error: {expected}\n")
    own = admin_client.create("self-destruct", [])
    deleted = json_of(tokens("delete", "self", "--json", "--yes", token=own.value))
    assert deleted == {"id": "self", "deleted": True}
    assert server_error(lambda: admin_client.get(own.id)).endswith("(HTTP 404)")


def test_api_errors_exit_with_the_code_of_their_kind_and_the_server_message(
    server: Any, tokens: RunTokens, admin_client: Client
) -> None:
    bad = tokens("create", "--name", "bad", "--cidr", "10.0.0.1/8")
    expected = server_error(lambda: admin_client.create("bad", [], ["10.0.0.1/8"]))
    assert expected.endswith("(HTTP 400)")
    assert (bad.returncode, bad.stdout, bad.stderr) == (2, "", f"error: {expected}\n")

    stranger = tokens("list", token="apitk_unknown_value")
    with Client(server.url, "apitk_unknown_value", retries=0) as unknown:
        expected = server_error(unknown.list)
    assert expected.endswith("(HTTP 401)")
    assert (stranger.returncode, stranger.stdout, stranger.stderr) == (
        4,
        "",
        f"error: {expected}{TOKEN_HINT}\n",
    )

    reader = admin_client.create("reader", [READ])
    assert reader.value is not None
    forbidden = tokens("delete", UNKNOWN_ID, "--yes", token=reader.value)
    with Client(server.url, reader.value, retries=0) as narrow:
        expected = server_error(lambda: narrow.delete(UNKNOWN_ID))
    assert expected == f"this API token lacks the {MODIFY} permission (HTTP 403)"
    assert (forbidden.returncode, forbidden.stderr) == (4, f"error: {expected}\n")


def test_connection_options_before_or_after_the_command(server: Any, tokens: RunTokens) -> None:
    after = tokens("--token-stdin", "get", "self", "--json", "--url", server.url,
                   url="http://127.0.0.1:9", token=None, stdin=server.admin + "\n")  # fmt: skip
    assert json_of(after)["name"] == "admin"
    before = tokens("--url", server.url, "--token-stdin", "get", "self", "--json",
                    url=None, token=None, stdin=server.admin + "\n")  # fmt: skip
    assert json_of(before)["name"] == "admin"
    for args in (("--token", server.admin, "list"), ("list", "--token", server.admin)):
        refused = tokens(*args)
        assert (refused.returncode, refused.stdout) == (2, "")
        assert refused.stderr.startswith("error: --token is refused: a token on the command line")
        assert server.admin not in refused.stderr


def test_login_profiles_and_names(
    server: Any, apitokens: RunApitokens, admin_client: Client, tmp_path: Path
) -> None:
    login = apitokens("login", "--url", server.url, stdin=server.admin + "\n")
    admin_id = admin_client.self_token().id
    assert (login.returncode, login.stdout) == (0, "")
    config = tmp_path / "home" / "config" / "apitokens" / "config.toml"
    assert login.stderr == (
        f"Logged in to {server.url} as token {admin_id} ('admin'); saved as profile "
        f"'default' (the default) in {config}.\n"
    )
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    # Neither --url nor a token from here on: the profile has both.
    assert json_of(apitokens("tokens", "get", "self", "--json"))["id"] == admin_id

    reader = admin_client.create("reader", [READ])
    assert reader.value is not None
    second = apitokens("login", "--url", server.url, "--profile", "ro", stdin=reader.value)
    assert second.returncode == 0, second.stderr
    assert json_of(apitokens("tokens", "get", "self", "--json"))["id"] == reader.id
    mine = apitokens("tokens", "get", "self", "--json", "--profile", "default")
    assert json_of(mine)["id"] == admin_id
    listed = json_of(apitokens("profiles", "--json"))
    assert listed == [
        {"name": "default", "url": server.url, "default": False},
        {"name": "ro", "url": server.url, "default": True},
    ]
    # A profile's token goes to the profile's URL only.
    elsewhere = apitokens("tokens", "list", "--url", "http://127.0.0.1:9")
    assert elsewhere.returncode == 2
    assert elsewhere.stderr.startswith(
        "error: no token for http://127.0.0.1:9: run `apitokens login"
    )
    missing = apitokens("tokens", "list", "--profile", "nope")
    assert missing.returncode == 3
    wrong = apitokens("login", "--url", server.url, "--profile", "bad", stdin="apitk_nope\n")
    assert wrong.returncode == 4
    assert "bad" not in {row["name"] for row in json_of(apitokens("profiles", "--json"))}

    # A unique name does wherever an id does.
    named = admin_client.create("named-once", [READ])
    by_name = apitokens("tokens", "get", "named-once", "--json", "--profile", "default")
    assert json_of(by_name)["id"] == named.id
    admin_client.create("twice", [])
    admin_client.create("twice", [])
    ambiguous = apitokens("tokens", "get", "twice", "--profile", "default")
    assert ambiguous.returncode == 2
    assert ambiguous.stderr.startswith("error: 2 tokens are named 'twice' (")
    nobody = apitokens("tokens", "get", "nobody", "--profile", "default")
    assert (nobody.returncode, nobody.stderr) == (
        3,
        "error: no token with the id or name 'nobody'\n",
    )
    gone = apitokens("tokens", "delete", "named-once", "--yes", "--profile", "default")
    assert (gone.returncode, gone.stdout) == (0, f"Deleted token {named.id}.\n")

    assert apitokens("logout", "--profile", "ro").returncode == 0
    assert json_of(apitokens("profiles", "--json")) == [
        {"name": "default", "url": server.url, "default": False}
    ]
    assert server.admin not in login.stderr + second.stderr


def test_audit_verify_and_leak_report(
    server: Any, apitokens: RunApitokens, admin_client: Client
) -> None:
    reader = admin_client.create("auditable", [READ])
    assert reader.value is not None
    events = json_of(apitokens("audit", "--token-id", "auditable", "--json", url=server.url,
                               token=server.admin))  # fmt: skip
    assert [(e["action"], e["tokenId"]) for e in events] == [("token.create", reader.id)]

    ok = apitokens("verify", "-p", READ, "--json", url=server.url, token=reader.value)
    assert json_of(ok) == {"id": reader.id, "name": "auditable", "permissions": [READ]}
    lacking = apitokens("verify", "-p", MODIFY, url=server.url, token=reader.value)
    assert (lacking.returncode, lacking.stdout) == (4, "")
    unknown = apitokens("verify", "-p", "NoSuchPermission", url=server.url, token=reader.value)
    assert unknown.returncode == 2

    report = apitokens("report-leak", url=server.url, stdin=reader.value + "\n")
    assert (report.returncode, report.stdout) == (0, "")
    assert reader.value not in report.stderr
    assert apitokens("verify", url=server.url, token=reader.value).returncode == 4
    leaked = json_of(apitokens("audit", "--token-id", reader.id, "--action",
                               "token.leak_reported", "--json", url=server.url,
                               token=server.admin))  # fmt: skip
    assert [e["detail"] for e in leaked] == [{"name": "auditable", "revoked": True}]


def test_backup_refuses_a_postgresql_database(tmp_path: Path) -> None:
    # Decided from the URL: nothing listens there, and nothing is written.
    url = "postgresql+psycopg://u:secret@127.0.0.1:9/apitokens"
    args = ["backup", str(tmp_path / "x"), "--database-url", url]
    refused = run_apitokens(args, cli_env(None, None, tmp_path / "home"))
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        "error: backup copies a SQLite database; for PostgreSQL use pg_dump (pg_dump "
        "--format=custom --file=DEST DATABASE_URL, see docs/operations.md)"
    )
    assert "secret" not in refused.stderr
    assert not (tmp_path / "x").exists()


def test_backup_of_a_live_database(
    server: Any, apitokens: RunApitokens, admin_client: Client, tmp_path: Path
) -> None:
    made = {admin_client.create(f"kept-{index}", [READ]).id for index in range(3)}
    copy = tmp_path / "copy.db"
    done = apitokens("backup", str(copy), "--database-url", server.database_url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"backup: wrote {copy} (4 tokens)")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM tokens")}
    assert made < ids
    assert admin_client.create("after-backup", []).name == "after-backup"  # still serving
    again = apitokens("backup", str(copy), "--database-url", server.database_url)
    assert again.returncode == 2
    assert again.stderr.splitlines()[-1] == (
        f"error: {copy} exists: give another path, or --force to replace it"
    )


def on_a_terminal(args: list[str], env: dict[str, str], answer: str) -> Result:
    """Run ``apitokens ARGS`` with stdin a terminal (a pty) on which ``answer`` is typed."""
    controller, terminal = pty.openpty()
    try:
        child = subprocess.Popen(
            [str(Path(sys.executable).parent / "apitokens"), *args],
            env=env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(terminal)
        os.write(controller, answer.encode())
        stdout, stderr = child.communicate(timeout=60)
    finally:
        os.close(controller)
    return Result(child.returncode, stdout, stderr)


def test_delete_and_rotate_ask_on_a_terminal(server: Any, admin_client: Client) -> None:
    token = admin_client.create("asked", [READ])
    env = cli_env(server.url, server.admin)
    declined = on_a_terminal(["tokens", "delete", "asked"], env, "n\n")
    assert (declined.returncode, declined.stdout) == (1, "")
    assert declined.stderr == (
        f"Delete token {token.id} ('asked')? It stops working at once. [y/N]: "
        "error: cancelled: nothing was changed\n"
    )
    assert admin_client.get(token.id).name == "asked"
    rotated = on_a_terminal(["tokens", "rotate", token.id, "--json"], env, "y\n")
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["id"] == token.id
    assert rotated.stderr.startswith(
        f"Rotate token {token.id} ('asked')? Its current value stops working at once. [y/N]: "
    )
    deleted = on_a_terminal(["tokens", "delete", token.id], env, "y\n")
    assert (deleted.returncode, deleted.stdout) == (0, f"Deleted token {token.id}.\n")
    with pytest.raises(NotFound):
        admin_client.get(token.id)


def test_audit_table_limit_and_references_and_verify_in_words(
    server: Any, admin_client: Client, tmp_path: Path
) -> None:
    admin = cli_env(server.url, server.admin, tmp_path / "home")
    made = [admin_client.create(name, [READ]) for name in ("first", "twin", "twin")]
    limited = run_main(["audit", "--limit", "2"], admin)
    assert limited.returncode == 0, limited.stderr
    assert limited.stderr == "Showing the first 2 events; use --all or a larger --limit.\n"
    rows = [line.split() for line in limited.stdout.splitlines() if line.strip()]
    assert rows[0] == ["At", "Action", "Token", "Actor", "Client", "IP", "Detail"]
    assert [row[3:5] for row in rows[2:]] == [  # At: date, time, "UTC"
        ["token.create", made[2].id],
        ["token.create", made[1].id],
    ]
    assert [row[-1] for row in rows[2:]] == ["127.0.0.1"] * 2  # client IP; no detail
    every = json.loads(run_main(["audit", "--all", "--json"], admin).stdout)
    assert [event["tokenId"] for event in every][:3] == [made[2].id, made[1].id, made[0].id]

    nobody = run_main(["audit", "--token-id", "nobody"], admin)
    assert (nobody.returncode, nobody.stdout, nobody.stderr) == (
        3,
        "",
        "error: no token named 'nobody'; a deleted token's events need its id\n",
    )
    twins = run_main(["audit", "--token-id", "twin"], admin)
    assert twins.returncode == 2
    assert twins.stderr.startswith("error: 2 tokens are named 'twin' (")
    own = json.loads(run_main(["audit", "--token-id", "self", "--json"], admin).stdout)
    admin_id = admin_client.self_token().id
    assert [(e["action"], e["tokenId"], e["actor"]) for e in own] == [
        ("token.create", admin_id, {"id": "admin", "type": "system"})  # made by bootstrap
    ]

    assert made[0].value is not None
    reader = cli_env(server.url, made[0].value, tmp_path / "home")
    verified = run_main(["verify", "-p", READ], reader)
    assert (verified.returncode, verified.stderr) == (0, "")
    assert verified.stdout == f"valid: token {made[0].id} ('first'); permissions: {READ}\n"
