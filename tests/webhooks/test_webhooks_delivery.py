"""Webhook deliveries in process: every event type, signatures, retries, timeouts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from datetime import timedelta

import pytest
from webhook_app import App, AppFactory
from webhook_receiver import Receiver

from apitokens.domain.events import EVENT_TYPES
from apitokens.domain.permissions import TOKEN_READ

VALUE_SHAPE = re.compile(r"apitk_[A-Za-z0-9_]{20,}")


def test_every_event_type_arrives_verified_and_without_a_value(
    app: App, receiver: Receiver
) -> None:
    hook = app.hook(receiver.url, description="all events")
    values: list[str] = [app.admin]
    expiring = app.token(
        "soon", [TOKEN_READ], expiresAt=(app.clock.now() + timedelta(days=2)).isoformat()
    )
    values.append(expiring["value"])
    made = app.token("ci", [TOKEN_READ])
    values.append(made["value"])
    updated = app.post(f"/api-tokens/{made['id']}", {"name": "ci-2", "permissions": [TOKEN_READ]})
    assert updated.status_code == 200
    rotated = app.post(f"/api-tokens/{made['id']}/rotate")
    assert rotated.status_code == 200
    values.append(rotated.json()["value"])
    assert app.get("/api-tokens/self", value=made["value"]).status_code == 401  # rotated out
    app.runtime.usage.flush()
    leaked = app.client.post("/leaked-values", json={"value": rotated.json()["value"]})
    assert leaked.status_code == 202
    doomed = app.token("doomed", [TOKEN_READ])
    values.append(doomed["value"])
    assert app.delete(f"/api-tokens/{doomed['id']}").status_code == 204
    app.runtime.lifecycle.expiry.run_once()  # 2 days left: the 7-day warning
    app.clock.advance(3 * 86400)
    app.runtime.lifecycle.expiry.run_once()  # expired

    assert app.send_all() == 10
    received = receiver.received()
    events = [request.verify(hook["secret"]) for request in received]
    assert sorted(event["type"] for event in events) == sorted(
        [*EVENT_TYPES, "api_token.created", "api_token.created"]
    )
    for request in received:
        assert not any(value in request.body for value in values)
        assert not VALUE_SHAPE.search(request.body)
        assert "value" not in request.json["data"]["token"]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"].startswith("msg_")
    by_type = {event["type"]: event for event in events}
    assert by_type["api_token.updated"]["data"]["token"]["name"] == "ci-2"
    assert by_type["api_token.updated"]["data"]["actor"] == {
        "id": _admin_id(app),
        "type": "api-token",
    }
    assert by_type["api_token.leaked"]["data"]["revoked"] is True
    assert by_type["api_token.rotated"]["data"]["gracePeriodSeconds"] == 0
    assert by_type["api_token.expiring"]["data"]["thresholdSeconds"] == 604800
    assert by_type["api_token.expiring"]["data"]["token"]["id"] == expiring["id"]
    assert by_type["api_token.expired"]["data"]["token"]["id"] == expiring["id"]
    assert by_type["api_token.rotated_value_used"]["data"]["token"]["id"] == made["id"]
    assert by_type["api_token.deleted"]["data"]["token"]["id"] == doomed["id"]
    assert by_type["api_token.deleted"]["data"]["actor"]["id"] == _admin_id(app)
    assert set(by_type["api_token.created"]) == {"type", "timestamp", "data"}
    assert set(by_type["api_token.created"]["data"]) == {"token", "actor", "clientIP"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", events[0]["timestamp"])


def _admin_id(app: App) -> str:
    body = app.get("/api-tokens/self").json()
    token_id: str = body["id"]
    return token_id


def test_a_receiver_that_fails_gets_the_event_again_with_the_same_id(
    app: App, receiver: Receiver
) -> None:
    hook = app.hook(receiver.url, events=["api_token.created"])
    receiver.statuses = [500]
    app.token("ci", [TOKEN_READ])
    assert app.runtime.lifecycle.sender.run_once() == 1
    (delivery,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    retry_at = app.clock.now() + timedelta(seconds=5)
    assert delivery == {
        "id": receiver.received()[0].headers["webhook-id"],
        "event": "api_token.created",
        "status": "pending",
        "attempts": 1,
        "lastStatusCode": 500,
        "nextAttemptAt": retry_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "deliveredAt": None,
    }
    assert app.runtime.lifecycle.sender.run_once() == 0  # not due yet
    app.clock.advance(5)
    assert app.runtime.lifecycle.sender.run_once() == 1
    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    assert first.body == second.body
    assert second.verify(hook["secret"])["type"] == "api_token.created"
    (done,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    assert (done["status"], done["attempts"], done["lastStatusCode"]) == ("delivered", 2, 204)
    assert done["nextAttemptAt"] is None
    assert done["deliveredAt"] is not None
    assert app.send_all() == 0


def test_a_delivery_fails_for_good_after_the_schedule(
    app_factory: AppFactory, receiver: Receiver
) -> None:
    app = app_factory(webhook_retry_seconds=(10, 20))
    hook = app.hook(receiver.url)
    receiver.statuses = [503, 502, 500, 200]
    app.token("ci", [TOKEN_READ])
    for step in (0, 10, 20):
        app.clock.advance(step)
        assert app.runtime.lifecycle.sender.run_once() == 1
    app.clock.advance(86400)
    assert app.runtime.lifecycle.sender.run_once() == 0
    (failed,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("failed", 3, 500)
    assert failed["nextAttemptAt"] is None
    assert len(receiver.received()) == 3


def test_redirects_are_not_followed(app: App, receiver: Receiver) -> None:
    hook = app.hook(receiver.url)
    receiver.statuses = [307]
    receiver.redirect_to = receiver.url + "/elsewhere"
    app.token("ci", [TOKEN_READ])
    assert app.runtime.lifecycle.sender.run_once() == 1
    assert [request.path for request in receiver.received()] == ["/hook"]
    (delivery,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    assert (delivery["status"], delivery["lastStatusCode"]) == ("pending", 307)


def test_no_answer_within_the_timeout_is_a_failed_attempt(
    app_factory: AppFactory, receiver: Receiver
) -> None:
    app = app_factory(webhook_timeout_seconds=0.2)
    hook = app.hook(receiver.url)
    receiver.hold = True
    app.token("ci", [TOKEN_READ])
    assert app.runtime.lifecycle.sender.run_once() == 1
    (delivery,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["lastStatusCode"] is None


def test_an_unreachable_receiver_is_retried(app: App, receiver: Receiver) -> None:
    hook = app.hook("http://127.0.0.1:9/nothing-listens-here")
    app.token("ci", [TOKEN_READ])
    assert app.runtime.lifecycle.sender.run_once() == 1
    (delivery,) = app.get(f"/webhooks/{hook['id']}/deliveries").json()["results"]
    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == (
        "pending",
        1,
        None,
    )


def test_the_secret_is_shown_once_and_never_logged_or_counted(
    app: App, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = app.hook(receiver.url)
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    receiver.statuses = [500]
    app.token("ci", [TOKEN_READ])
    app.send_all()
    app.clock.advance(5)
    app.send_all()
    listed = app.get("/webhooks").text
    deliveries = app.get(f"/webhooks/{hook['id']}/deliveries").text
    audit = app.get("/audit-events").text
    metrics = app.client.get("/metrics").text
    for text in (listed, deliveries, audit, metrics, caplog.text):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    assert all(secret not in request.body for request in receiver.received())


def test_a_change_that_is_refused_sends_nothing(app: App, receiver: Receiver) -> None:
    app.hook(receiver.url)
    narrow = app.token("narrow", [TOKEN_READ, "OrganizationAPITokenModify"])
    admin_id = _admin_id(app)
    app.send_all()
    before = len(receiver.received())
    refused = app.post(f"/api-tokens/{admin_id}/rotate", value=narrow["value"])
    assert refused.status_code == 403
    assert app.send_all() == 0
    assert len(receiver.received()) == before


def _verify_with_the_standard_library(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver side of docs/webhooks.md, written without the standardwebhooks package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(
        hmac.compare_digest(expected, signature.split(",", 1)[1])
        for signature in headers["webhook-signature"].split()
        if signature.startswith("v1,")
    )


def test_signatures_verify_without_the_library_and_fail_when_tampered(
    app: App, receiver: Receiver
) -> None:
    hook = app.hook(receiver.url)
    app.token("ci", [TOKEN_READ])
    app.send_all()
    (request,) = receiver.received()
    body = request.body.encode()
    assert _verify_with_the_standard_library(hook["secret"], request.headers, body)
    assert not _verify_with_the_standard_library(hook["secret"], request.headers, body + b" ")
    other = app.hook(receiver.url)["secret"]
    assert not _verify_with_the_standard_library(other, request.headers, body)
    assert set(request.headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert request.headers["webhook-signature"].startswith("v1,")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
