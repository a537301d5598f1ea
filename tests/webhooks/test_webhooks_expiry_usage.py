"""Expiry warnings (once per threshold) and per-token daily usage, in process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from webhook_app import App
from webhook_receiver import Receiver

from apitokens.domain.permissions import TOKEN_READ

DAY = 86400


def _types(app: App, receiver: Receiver) -> list[tuple[str, int | None]]:
    app.send_all()
    return [
        (event["type"], event["data"].get("thresholdSeconds"))
        for event in receiver.events()
        if event["type"] in ("api_token.expiring", "api_token.expired")
    ]


def test_an_expiring_token_is_warned_once_per_threshold(app: App, receiver: Receiver) -> None:
    app.hook(receiver.url, events=["api_token.expiring", "api_token.expired"])
    expires = app.clock.now() + timedelta(days=10)
    token = app.token("soon", [TOKEN_READ], expiresAt=expires.isoformat())
    app.token("forever", [TOKEN_READ])
    steps = [
        (0, []),
        (3 * DAY + 1, [("api_token.expiring", 604800)]),  # 7 days less a second left
        (60, []),
        (6 * DAY, [("api_token.expiring", 86400)]),  # under a day left
        (DAY, [("api_token.expired", None)]),
        (DAY, []),
    ]
    seen: list[tuple[str, int | None]] = []
    for seconds, new in steps:
        app.clock.advance(seconds)
        app.runtime.lifecycle.expiry.run_once()
        app.runtime.lifecycle.expiry.run_once()  # a second pass (or instance) adds nothing
        seen.extend(new)
        assert _types(app, receiver) == seen
    ids = {event["data"]["token"]["id"] for event in receiver.events()}
    assert ids == {token["id"]}


def test_a_token_first_seen_past_both_thresholds_gets_one_warning(
    app: App, receiver: Receiver
) -> None:
    app.hook(receiver.url, events=["api_token.expiring"])
    expires = app.clock.now() + timedelta(hours=2)
    app.token("short", [TOKEN_READ], expiresAt=expires.isoformat())
    app.runtime.lifecycle.expiry.run_once()
    assert _types(app, receiver) == [("api_token.expiring", 86400)]


def test_an_extended_expiry_is_warned_about_again(app: App, receiver: Receiver) -> None:
    app.hook(receiver.url, events=["api_token.expiring"])
    token = app.token(
        "soon", [TOKEN_READ], expiresAt=(app.clock.now() + timedelta(hours=2)).isoformat()
    )
    app.runtime.lifecycle.expiry.run_once()
    later = (app.clock.now() + timedelta(hours=3)).isoformat()
    body = {"name": "soon", "permissions": [TOKEN_READ], "expiresAt": later}
    assert app.post(f"/api-tokens/{token['id']}", body).status_code == 200
    app.runtime.lifecycle.expiry.run_once()
    assert _types(app, receiver) == [("api_token.expiring", 86400)] * 2


def test_usage_counts_successful_authentications_per_day(app: App) -> None:
    token = app.token("ci", [TOKEN_READ])
    for _ in range(7):
        assert app.get("/api-tokens/self", value=token["value"]).status_code == 200
    assert app.get("/api-tokens/self", value=token["value"] + "x").status_code == 401
    today = app.clock.now().date()
    pending = app.get(f"/api-tokens/{token['id']}/usage", days=1).json()
    assert pending == {"results": [{"date": today.isoformat(), "requests": 7}]}
    app.runtime.usage.flush()
    written = app.get(f"/api-tokens/{token['id']}/usage", days=1).json()
    assert written == pending
    app.clock.advance(DAY)
    for _ in range(2):
        assert app.get("/api-tokens/self", value=token["value"]).status_code == 200
    app.runtime.usage.flush()
    week = app.get(f"/api-tokens/{token['id']}/usage", days=4).json()["results"]
    expected = [0, 0, 7, 2]
    days = [today + timedelta(days=offset) for offset in (-2, -1, 0, 1)]
    assert week == [
        {"date": day.isoformat(), "requests": n} for day, n in zip(days, expected, strict=True)
    ]
    default = app.get(f"/api-tokens/{token['id']}/usage").json()["results"]
    assert len(default) == 30
    assert default[-2:] == week[-2:]


def test_usage_of_itself_needs_no_permission(app: App) -> None:
    narrow = app.token("narrow", ["AlertRead"])
    other = app.token("other", ["AlertRead"])
    own = app.get("/api-tokens/self/usage", value=narrow["value"], days=1)
    assert own.status_code == 200
    assert own.json()["results"][0]["requests"] == 1  # this request itself
    by_id = app.get(f"/api-tokens/{narrow['id']}/usage", value=narrow["value"], days=1)
    assert by_id.status_code == 200
    assert app.get(f"/api-tokens/{other['id']}/usage", value=narrow["value"]).status_code == 403
    assert app.get("/api-tokens/no-such-id/usage", value=narrow["value"]).status_code == 403
    assert app.get("/api-tokens/no-such-id/usage").status_code == 404


@pytest.mark.parametrize("days", ["0", "91", "-1", "abc", "1.5"])
def test_usage_days_out_of_range_are_refused(app: App, days: str) -> None:
    refused = app.get("/api-tokens/self/usage", days=days)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("days: ")


def test_usage_of_a_deleted_token_is_gone(app: App) -> None:
    token = app.token("ci", [TOKEN_READ])
    app.get("/api-tokens/self", value=token["value"])
    app.runtime.usage.flush()
    assert app.delete(f"/api-tokens/{token['id']}").status_code == 204
    assert app.get(f"/api-tokens/{token['id']}/usage").status_code == 404
