"""Expiry: ``expiresAt`` on create and update, default and maximum lifetimes, 401 "expired"."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from extension_helpers import INVALID, clock_from_now, create_token, iso, key, parse_time

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("expiresAt")


def test_expires_at_is_validated_stored_changed_kept_and_cleared(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    def from_now(**delta: float) -> datetime:
        return clock_from_now(ext_server, **delta)

    past = iso(from_now(seconds=-5))
    _refused(admin.post("/api-tokens", json={"name": "p", "permissions": [], "expiresAt": past}))
    naive = (ext_server.clock.now() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    _refused(admin.post("/api-tokens", json={"name": "n", "permissions": [], "expiresAt": naive}))

    assert create_token(admin, "forever")["expiresAt"] is None  # no lifetime settings
    wanted = from_now(days=1)
    token = create_token(admin, "e", expiresAt=iso(wanted))
    assert token["expiresAt"] == iso(wanted)  # UTC, milliseconds, Z
    path = f"/api-tokens/{token['id']}"
    assert admin.get(path).json()["expiresAt"] == iso(wanted)

    _refused(admin.post(path, json={"name": "e", "permissions": [], "expiresAt": past}))
    later = iso(from_now(days=2))
    changed = admin.post(path, json={"name": "e", "permissions": [], "expiresAt": later})
    assert changed.json()["expiresAt"] == later
    kept = admin.post(path, json={"name": "renamed", "permissions": []})
    assert kept.json()["expiresAt"] == later
    cleared = admin.post(path, json={"name": "e", "permissions": [], "expiresAt": None})
    assert cleared.json()["expiresAt"] is None


def test_maximum_lifetime_refuses_longer_and_never_and_caps_the_default(
    ext_server_factory: AppFactory, api: ApiClientFactory
) -> None:
    server = ext_server_factory(env={"APITOKENS_MAX_LIFETIME_SECONDS": "3600"})
    admin = api(server, server.admin)

    def from_now(**delta: float) -> datetime:
        return clock_from_now(server, **delta)

    too_far = iso(from_now(hours=2))
    _refused(admin.post("/api-tokens", json={"name": "f", "permissions": [], "expiresAt": too_far}))
    _refused(admin.post("/api-tokens", json={"name": "n", "permissions": [], "expiresAt": None}))

    within = create_token(admin, "near", expiresAt=iso(from_now(minutes=30)))
    path = f"/api-tokens/{within['id']}"
    _refused(admin.post(path, json={"name": "near", "permissions": [], "expiresAt": too_far}))
    _refused(admin.post(path, json={"name": "near", "permissions": [], "expiresAt": None}))

    before = server.clock.now()
    capped = parse_time(create_token(admin, "capped")["expiresAt"])
    assert before + timedelta(seconds=3590) <= capped <= from_now(seconds=3605)


def test_default_lifetime_is_applied_unless_the_caller_says_otherwise(
    ext_server_factory: AppFactory, api: ApiClientFactory
) -> None:
    server = ext_server_factory(env={"APITOKENS_DEFAULT_LIFETIME_SECONDS": "600"})
    admin = api(server, server.admin)

    def from_now(**delta: float) -> datetime:
        return clock_from_now(server, **delta)

    before = server.clock.now()
    default = parse_time(create_token(admin, "default")["expiresAt"])
    assert before + timedelta(seconds=595) <= default <= from_now(seconds=605)
    explicit = iso(from_now(days=30))
    assert create_token(admin, "explicit", expiresAt=explicit)["expiresAt"] == explicit
    assert create_token(admin, "never", expiresAt=None)["expiresAt"] is None


def test_expired_value_gets_401_saying_expired_and_the_token_stays_visible(
    ext_server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    expires = clock_from_now(ext_server, seconds=3)
    token = create_token(admin, "short", expiresAt=iso(expires))
    caller = api(ext_server, token["value"])
    assert caller.get("/api-tokens/self").status_code == 200
    ext_server.clock.advance_past(expires, margin=0.3)

    refused = caller.get("/api-tokens/self")
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]
    verify = admin.get("/verify", headers=key(token["value"]))
    assert (verify.status_code, "expired" in verify.json()["message"]) == (401, True)
    unknown = admin.get("/api-tokens/self", headers=key("apitk_" + "A" * 49))
    assert (unknown.status_code, unknown.json()["message"]) == (401, INVALID)

    assert admin.get(f"/api-tokens/{token['id']}").json()["expiresAt"] == iso(expires)
    listed = [item["id"] for item in admin.get("/api-tokens").json()["results"]]
    assert token["id"] in listed

    # An update may extend it again: the same value works once more.
    body = {
        "name": "short",
        "permissions": [],
        "expiresAt": iso(clock_from_now(ext_server, days=1)),
    }
    assert admin.post(f"/api-tokens/{token['id']}", json=body).status_code == 200
    assert caller.get("/api-tokens/self").status_code == 200
