"""Structured logs of the app: one JSON line per request, never a token value."""

from __future__ import annotations

import json
from typing import Any

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

READ = "OrganizationAPITokenRead"
BAD_KEY = "apitk_thisIsNotAValidTokenValueAtAll_0000"
FIELDS = {"method", "route", "status", "duration_ms", "token_id", "client_ip"}


def json_lines(server: InProcessServer) -> list[dict[str, Any]]:
    """Every line the server logged, each parsed as JSON (a line that is not JSON fails)."""
    return [json.loads(line) for line in server.log_text().splitlines() if line.strip()]


def access_lines(server: InProcessServer) -> list[dict[str, Any]]:
    return [line for line in json_lines(server) if line["logger"] == "apitokens.access"]


def test_one_json_line_per_request_without_values(
    app_server: InProcessServer, api: ApiClientFactory
) -> None:
    server = app_server
    admin = api(server, server.admin)
    admin_id = admin.get("/api-tokens/self").json()["id"]
    assert access_lines(server)[-1]["token_id"] == admin_id
    before = len(access_lines(server))

    assert api(server).get("/healthz").status_code == 200
    created = admin.post("/api-tokens", json={"name": "logged", "permissions": [READ]}).json()
    own = api(server, created["value"]).get(f"/api-tokens/{created['id']}")
    assert own.status_code == 200
    assert api(server, BAD_KEY).get("/api-tokens").status_code == 401
    rotated = admin.post(f"/api-tokens/{created['id']}/rotate").json()
    assert api(server).get("/no/such-path").status_code == 404

    lines = access_lines(server)[before:]
    assert len(lines) == 6, lines
    for line in lines:
        assert set(line) >= FIELDS, line
        assert line["message"] == "request"
        assert line["level"] == "info"
        assert line["client_ip"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float | int)
        assert line["duration_ms"] >= 0
    seen = [(ln["method"], ln["route"], ln["status"], ln["token_id"]) for ln in lines]
    assert seen == [
        ("GET", "/healthz", 200, None),
        ("POST", "/api-tokens", 200, admin_id),
        ("GET", "/api-tokens/{id}", 200, created["id"]),
        ("GET", "/api-tokens", 401, None),
        ("POST", "/api-tokens/{id}/rotate", 200, admin_id),
        ("GET", "unmatched", 404, None),
    ]

    text = server.log_text()
    assert "color_message" not in text  # uvicorn's terminal-coloured duplicate is dropped
    for secret in (server.admin, created["value"], rotated["value"], BAD_KEY):
        assert secret not in text
    # Routes are templates, never raw paths (which could carry ids or anything else).
    assert f"/api-tokens/{created['id']}" not in text
    assert "such-path" not in text
