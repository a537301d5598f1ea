"""``apitokens webhooks`` and ``apitokens tokens usage`` against a real server."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from apitokens.cli.main import app
from support.processes import RunningServer
from support.protocols import ApiClientFactory, ServerFactory


def _run(server: RunningServer, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {
        "APITOKENS_URL": server.url,
        "APITOKENS_TOKEN": token or server.admin or "",
        "COLUMNS": "200",  # a wide terminal: whatever an earlier test left in the environment
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_webhooks_create_list_deliveries_delete(
    server_factory: ServerFactory, sqlite_database_url: str, api: ApiClientFactory
) -> None:
    server = server_factory(sqlite_database_url, env={"APITOKENS_WEBHOOK_ALLOW_PRIVATE": "true"})
    code, out, err = _run(
        server,
        "webhooks",
        "create",
        "http://127.0.0.1:9/hook",
        "-e",
        "api_token.created",
        "--description",
        "ops",
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["secret"].startswith("whsec_")
    assert "will not be shown again" in err
    code, out, _ = _run(server, "webhooks", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{k: v for k, v in created.items() if k != "secret"}]
    code, out, _ = _run(server, "webhooks", "list")
    assert created["id"] in out and "api_token.created" in out
    assert created["secret"] not in out
    admin = api(server, server.admin)
    made = admin.post("/api-tokens", json={"name": "ci", "permissions": []}).json()
    code, out, _ = _run(server, "webhooks", "deliveries", created["id"], "--json")
    assert code == 0
    (delivery,) = json.loads(out)
    assert (delivery["event"], delivery["status"]) == ("api_token.created", "pending")
    code, out, _ = _run(server, "webhooks", "deliveries", created["id"])
    assert delivery["id"] in out
    code, out, _ = _run(server, "webhooks", "delete", created["id"])
    assert (code, out.strip()) == (0, f"Deleted webhook {created['id']}.")
    code, _, err = _run(server, "webhooks", "delete", created["id"])
    assert (code, err.strip()) == (1, "error: 404: no webhook with that id")
    code, _, err = _run(server, "webhooks", "create", "ftp://x")
    assert (code, err.strip()) == (
        1,
        "error: 400: url: must be an absolute http:// or https:// URL",
    )

    for _ in range(3):
        assert httpx.get(f"{server.url}/api-tokens/self", headers={"X-API-Key": made["value"]})
    code, out, _ = _run(server, "tokens", "usage", made["id"], "--days", "2", "--json")
    assert code == 0
    days = json.loads(out)
    assert len(days) == 2
    assert sum(day["requests"] for day in days) == 3  # this instance's uses, not yet written
    code, out, _ = _run(server, "tokens", "usage", "self", "--days", "3")
    assert code == 0
    assert "Date (UTC)" in out and "requests in 3 days" in out
