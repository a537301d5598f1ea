"""Rotation with ``?gracePeriodSeconds=N``: both values work for N seconds, then only the
new one; a later use of the old value is refused and recorded as suspicious."""

from __future__ import annotations

import httpx
from extension_helpers import INVALID, create_token, flushed_event, key

from support.inprocess import InProcessServer

MAX_GRACE = 7 * 24 * 3600
GRACE = 4


def _status(admin: httpx.Client, value: str) -> int:
    return admin.get("/verify", headers=key(value)).status_code


def test_old_value_works_for_the_whole_grace_period_then_is_refused_and_recorded(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    token = create_token(admin, "graceful")
    old = token["value"]
    rotated = admin.post(f"/api-tokens/{token['id']}/rotate", params={"gracePeriodSeconds": GRACE})
    assert rotated.status_code == 200
    new = rotated.json()["value"]
    assert new != old

    # The first use of the new value does not end the grace early.
    assert _status(admin, new) == 204
    assert _status(admin, old) == 204
    assert _status(admin, new) == 204
    assert _status(admin, old) == 204

    ext_server.clock.advance(GRACE - 0.5)  # the last moments of the grace period
    assert _status(admin, old) == 204
    ext_server.clock.advance(0.8)
    refused = admin.get("/api-tokens/self", headers=key(old))
    assert (refused.status_code, refused.json()["message"]) == (401, INVALID)
    assert _status(admin, new) == 204

    event = flushed_event(ext_server, admin, "auth.rotated_value_used", tokenId=token["id"])
    assert event["tokenId"] == token["id"]
    assert event["clientIP"] == "127.0.0.1"
    rotate = flushed_event(ext_server, admin, "token.rotate", tokenId=token["id"])
    assert rotate["detail"] == {"gracePeriodSeconds": GRACE}


def test_without_grace_the_old_value_stops_at_once(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    token = create_token(admin, "strict")
    rotated = admin.post(f"/api-tokens/{token['id']}/rotate").json()
    assert _status(admin, token["value"]) == 401
    assert _status(admin, rotated["value"]) == 204
    event = flushed_event(ext_server, admin, "auth.rotated_value_used", tokenId=token["id"])
    assert event["actor"] is None


def test_grace_period_bounds(admin: httpx.Client) -> None:
    token = create_token(admin, "bounds")
    path = f"/api-tokens/{token['id']}/rotate"
    for bad in (MAX_GRACE + 1, -1, "soon", 1.5):
        response = admin.post(path, params={"gracePeriodSeconds": bad})
        assert response.status_code == 400, (bad, response.text)
        assert "gracePeriodSeconds" in response.json()["message"]
    assert _status(admin, token["value"]) == 204  # a refused rotation changed nothing
    longest = admin.post(path, params={"gracePeriodSeconds": MAX_GRACE})
    assert longest.status_code == 200
    assert _status(admin, token["value"]) == 204
    assert _status(admin, longest.json()["value"]) == 204


def test_a_second_rotation_does_not_extend_an_earlier_values_grace(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    token = create_token(admin, "twice")
    path = f"/api-tokens/{token['id']}/rotate"
    second = admin.post(path, params={"gracePeriodSeconds": 1}).json()["value"]
    third = admin.post(path, params={"gracePeriodSeconds": 3600}).json()["value"]
    ext_server.clock.advance(1.3)
    assert _status(admin, token["value"]) == 401  # kept its own, shorter grace
    assert _status(admin, second) == 204  # within the second rotation's grace
    assert _status(admin, third) == 204
