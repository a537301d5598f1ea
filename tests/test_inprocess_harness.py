"""The in-process harness itself (tests/support/inprocess.py): its clock, its settings,
its transport and its restarts, so the API tests can trust what it hands them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from support.inprocess import NEVER_SECONDS, InProcessServer, ManualClock, lookup, settings_for
from support.protocols import AppFactory

START = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_manual_clock_stands_still_and_steps_in_milliseconds() -> None:
    clock = ManualClock(START)
    assert clock.now() == clock.now() == START
    assert clock.advance(1.5) == START + timedelta(seconds=1.5)
    assert clock.advance(0.0004) == START + timedelta(seconds=1.5)  # below a millisecond
    assert clock.advance_past(START, margin=1) == START + timedelta(seconds=1.5)  # already past
    assert clock.advance_past(START + timedelta(seconds=3)) == START + timedelta(seconds=3.001)
    with pytest.raises(ValueError, match="forward"):
        clock.step(timedelta(milliseconds=-1))


def test_manual_clock_starts_at_milliseconds() -> None:
    now = ManualClock(datetime(2030, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)).now()
    assert now.microsecond == 123000
    assert now.tzinfo is UTC


def test_settings_follow_the_environment_and_options_of_a_server_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APITOKENS_TOKEN_PREFIX", "shell")  # the shell's settings stay out
    settings = settings_for(
        "sqlite:///x.db",
        {"APITOKENS_AUTH_FAILURE_LIMIT": "3", "APITOKENS_MAX_LIFETIME_SECONDS": None},
        ["--trusted-proxies", "127.0.0.1/32,::1/128"],
    )
    assert settings.database_url == "sqlite:///x.db"
    assert settings.auth_failure_limit == 3
    assert settings.max_lifetime_seconds is None
    assert settings.token_prefix == "apitk"
    assert [str(block) for block in settings.trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    assert settings.last_used_flush_seconds == settings.cache_poll_seconds == NEVER_SECONDS
    with pytest.raises(ValueError, match="not an apitokens setting"):
        settings_for("sqlite:///x.db", {"DATABASE_URL": "x"})
    with pytest.raises(ValueError, match="pairs"):
        settings_for("sqlite:///x.db", args=["--trusted-proxies"])


@pytest.fixture
def app(app_factory: AppFactory) -> Iterator[InProcessServer]:
    yield app_factory(clock=ManualClock(START))


def test_requests_see_the_clock_move_one_millisecond_each(app: InProcessServer) -> None:
    admin = app.client(app.admin)
    first = admin.post("/api-tokens", json={"name": "a", "permissions": []}).json()
    second = admin.post("/api-tokens", json={"name": "b", "permissions": []}).json()
    assert first["createdAt"] < second["createdAt"]
    assert app.clock.now() > START


def test_the_peer_address_is_the_one_asked_for(app: InProcessServer) -> None:
    admin = app.client(app.admin, peer="192.0.2.7")
    assert admin.get("/api-tokens/self").json()["lastUsedIPs"] == ["192.0.2.7"]


def test_a_chunked_body_reaches_the_app_in_chunks(app: InProcessServer) -> None:
    raw = json.dumps({"name": "chunked", "permissions": []}).encode()
    chunks = iter([raw[:5], raw[5:]])
    response = app.client(app.admin).post(
        "/api-tokens", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "chunked"


def test_restart_keeps_the_store_and_writes_pending_usage(app: InProcessServer) -> None:
    admin = app.client(app.admin)
    token = admin.post("/api-tokens", json={"name": "kept", "permissions": []}).json()
    used = app.client(token["value"]).get("/api-tokens/self").json()["lastUsedAt"]
    app.restart()
    assert admin.get(f"/api-tokens/{token['id']}").json()["lastUsedAt"] == used
    assert lookup(app.url) is app


def test_the_log_holds_the_apps_lines_and_not_the_clients(app: InProcessServer) -> None:
    app.client(app.admin).get("/api-tokens/self")
    records = [json.loads(line) for line in app.log_text().splitlines()]
    assert {"apitokens", "apitokens.access"} <= {record["logger"] for record in records}
    assert not [record for record in records if record["logger"].startswith("httpx")]
    assert app.admin not in app.log_text()


def test_a_stopped_app_refuses_requests_like_a_stopped_server(app: InProcessServer) -> None:
    client = app.client()
    app.stop()
    with pytest.raises(Exception, match="not running"):
        client.get("/healthz")
    app.start()
    assert client.get("/healthz").status_code == 200
