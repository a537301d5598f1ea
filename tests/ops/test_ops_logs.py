"""Structured logs of a real server: one JSON line per request, never a token value."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from support.processes import RunningServer
from support.protocols import ApiClientFactory

READ = "OrganizationAPITokenRead"
BAD_KEY = "apitk_thisIsNotAValidTokenValueAtAll_0000"
FIELDS = {"method", "route", "status", "duration_ms", "token_id", "client_ip"}


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    """Every line the server wrote, each parsed as JSON (a line that is not JSON fails).

    The test harness marks each start of the server with a ``=== start ...`` line.
    """
    lines = [
        line
        for line in server.log_text().splitlines()
        if line.strip() and not line.startswith("=== start #")
    ]
    return [json.loads(line) for line in lines]


def access_lines(server: RunningServer) -> list[dict[str, Any]]:
    return [line for line in json_lines(server) if line["logger"] == "apitokens.access"]


def settled(
    server: RunningServer, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The access lines once ``done(lines)`` holds (or after 5 s).

    A line is written once the response is sent, so it may trail the response a little.
    """
    deadline = time.monotonic() + 5
    while not done(lines := access_lines(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def test_one_json_line_per_request_without_values(
    sqlite_server: RunningServer, api: ApiClientFactory
) -> None:
    server = sqlite_server
    admin = api(server, server.admin)
    admin_id = admin.get("/api-tokens/self").json()["id"]
    before = len(settled(server, lambda lines: lines[-1]["token_id"] == admin_id))

    assert api(server).get("/healthz").status_code == 200
    created = admin.post("/api-tokens", json={"name": "logged", "permissions": [READ]}).json()
    own = api(server, created["value"]).get(f"/api-tokens/{created['id']}")
    assert own.status_code == 200
    assert api(server, BAD_KEY).get("/api-tokens").status_code == 401
    rotated = admin.post(f"/api-tokens/{created['id']}/rotate").json()
    assert api(server).get("/no/such-path").status_code == 404

    lines = settled(server, lambda lines: len(lines) >= before + 6)[before:]
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
