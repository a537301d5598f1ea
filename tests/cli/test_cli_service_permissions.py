"""``--service-permission``: the command line writes and shows ``servicePermissions``.

The commands run in this process through the executable's entry point (``run_main``), as
in the other command-line tests: ten new interpreters were 5 s of this test, and the
executable itself runs as a process in test_cli_tokens.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokens_cli import Result, cli_env, run_main

from apitokens.client import Client

READ = "OrganizationAPITokenRead"
EXTRA = "reports:read,reports:write"


def test_service_permissions_from_the_command_line(
    server_factory: Any, sqlite_database_url: str, tmp_path: Path
) -> None:
    server = server_factory(sqlite_database_url, env={"APITOKENS_EXTRA_PERMISSIONS": EXTRA})
    env = cli_env(server.url, server.admin, tmp_path / "home")

    def tokens(*args: str) -> Result:
        return run_main(["tokens", *args], env)

    made = tokens(
        "create", "--name", "reporter", "-p", READ,
        "--service-permission", "reports:write", "-s", "reports:read", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["permissions"] == [READ]
    assert created["servicePermissions"] == ["reports:read", "reports:write"]

    # Renamed: the service permissions are kept; given, they replace; cleared, gone.
    renamed = json.loads(tokens("update", created["id"], "--name", "r2", "--json").stdout)
    assert renamed["servicePermissions"] == ["reports:read", "reports:write"]
    replaced = tokens("update", created["id"], "-s", "reports:read", "--json")
    assert json.loads(replaced.stdout)["servicePermissions"] == ["reports:read"]

    shown = tokens("get", created["id"])
    assert shown.returncode == 0
    assert "Service permissions" in shown.stdout
    assert "reports:read" in shown.stdout
    listed = tokens("list")
    assert "Service permissions" in listed.stdout

    misplaced = tokens("create", "--name", "x", "-p", "reports:read")
    assert misplaced.returncode != 0
    assert "send the permissions of other services in servicePermissions" in misplaced.stderr

    both = tokens("update", created["id"], "-s", "reports:read", "--clear-service-permissions")
    assert both.returncode == 2
    cleared = tokens("update", created["id"], "--clear-service-permissions", "--json")
    assert json.loads(cleared.stdout)["servicePermissions"] == []
    with Client(server.url, server.admin, retries=0) as client:
        token = client.get(created["id"])
    assert (token.permissions, token.service_permissions) == ((READ,), ())
    assert tokens("get", created["id"]).stdout.count("Service permissions") == 1
