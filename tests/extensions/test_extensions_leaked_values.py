"""``POST /leaked-values``: unauthenticated, limited per address, one answer for every
value; a working value's token is revoked before the answer and the report recorded."""

from __future__ import annotations

import httpx
from extension_helpers import (
    INVALID,
    broken_checksum,
    clock_from_now,
    create_token,
    flushed_event,
    iso,
    key,
    well_formed,
)

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory

RECEIVED = {"message": "report received; a valid value is revoked at once"}


def _report(client: httpx.Client, value: object, address: str = "203.0.113.1") -> httpx.Response:
    headers = {"X-Forwarded-For": address}
    return client.post("/leaked-values", json={"value": value}, headers=headers)


def _answer(response: httpx.Response) -> tuple[int, bytes, str | None]:
    return response.status_code, response.content, response.headers.get("content-type")


def test_a_reported_value_is_revoked_at_once_and_recorded(
    ext_server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = create_token(admin, "leaky", ("AlertRead",))
    anonymous = api(ext_server)
    response = _report(anonymous, token["value"])
    assert response.status_code == 202
    assert response.json() == RECEIVED

    caller = api(ext_server, token["value"])
    refused = caller.get("/api-tokens/self")
    assert (refused.status_code, refused.json()["message"]) == (401, INVALID)
    assert admin.get(f"/api-tokens/{token['id']}").status_code == 404

    event = flushed_event(ext_server, admin, "token.leak_reported", tokenId=token["id"])
    assert event["clientIP"] == "203.0.113.1"
    assert event["actor"] is None
    assert event["detail"] == {"name": "leaky", "revoked": True}
    assert event["at"].endswith("Z")
    assert token["value"] not in ext_server.log_text()
    assert token["value"] not in admin.get("/audit-events").text


def test_the_answer_is_the_same_for_valid_unknown_and_junk_values(
    ext_server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    anonymous = api(ext_server)
    valid = create_token(admin, "valid")["value"]
    candidates = [valid, well_formed("U"), broken_checksum(valid), "", "not a value", "x" * 5000]
    answers = [_report(anonymous, value, f"203.0.113.{n}") for n, value in enumerate(candidates)]
    assert {_answer(response) for response in answers} == {
        (202, answers[0].content, "application/json")
    }
    assert answers[0].json() == RECEIVED
    assert admin.get("/verify", headers=key(valid)).status_code == 401
    # Only a body that is not {"value": "<string>"} is refused; that says nothing of values.
    for body in ({}, {"valeu": "x"}, {"value": 42}, ["x"]):
        response = anonymous.post("/leaked-values", json=body)
        assert response.status_code == 400, body
        assert response.json()["message"]


def test_what_a_report_revokes(ext_server: InProcessServer, admin: httpx.Client) -> None:
    # A value rotated out but still within its grace period still works: revoked.
    graceful = create_token(admin, "in-grace")
    admin.post(f"/api-tokens/{graceful['id']}/rotate", params={"gracePeriodSeconds": 3600})
    assert _report(admin, graceful["value"]).status_code == 202
    assert admin.get(f"/api-tokens/{graceful['id']}").status_code == 404

    # An expired token's value: revoked too, since an update could extend the expiry.
    expires = clock_from_now(ext_server, seconds=1)
    expiring = create_token(admin, "expiring", expiresAt=iso(expires))
    ext_server.clock.advance_past(expires, margin=0.3)
    assert _report(admin, expiring["value"]).status_code == 202
    assert admin.get(f"/api-tokens/{expiring['id']}").status_code == 404

    # A value rotated out past its grace can never work again: the token is kept.
    retired = create_token(admin, "retired")
    new = admin.post(f"/api-tokens/{retired['id']}/rotate").json()["value"]
    ext_server.clock.advance(0.05)
    assert _report(admin, retired["value"]).status_code == 202
    assert admin.get(f"/api-tokens/{retired['id']}").status_code == 200
    assert admin.get("/verify", headers=key(new)).status_code == 204
    event = flushed_event(ext_server, admin, "token.leak_reported", tokenId=retired["id"])
    assert event["detail"] == {"name": "retired", "revoked": False}


def test_reports_are_limited_per_address(
    ext_server_factory: AppFactory, api: ApiClientFactory
) -> None:
    server = ext_server_factory(env={"APITOKENS_LEAK_REPORT_LIMIT": "3"})
    anonymous = api(server)
    for _ in range(3):
        assert _report(anonymous, "junk", "198.51.100.7").status_code == 202
    limited = _report(anonymous, "junk", "198.51.100.7")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "leaked-value reports" in limited.json()["message"]
    # Malformed bodies count as well, and other addresses are not affected.
    bad_body = anonymous.post(
        "/leaked-values", content=b"{", headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert bad_body.status_code == 429
    assert _report(anonymous, "junk", "198.51.100.8").status_code == 202
    # Reports have their own budget: authentication from that address still works.
    admin = api(server, server.admin)
    headers = {"X-Forwarded-For": "198.51.100.7"}
    assert admin.get("/api-tokens/self", headers=headers).status_code == 200
