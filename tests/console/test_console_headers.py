"""The console is served with headers that keep a token in sessionStorage safe."""

from __future__ import annotations

import httpx

from support.processes import RunningServer


def test_console_pages_carry_a_strict_content_security_policy(
    sqlite_server: RunningServer,
) -> None:
    for path in ("/console/", "/console/app.js"):
        response = httpx.get(sqlite_server.url + path, timeout=10)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_api_routes_do_not_carry_the_console_policy(sqlite_server: RunningServer) -> None:
    response = httpx.get(sqlite_server.url + "/healthz", timeout=10)
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
