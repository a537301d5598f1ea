"""Webhooks in the service layer: registering, listing, deleting (with the audit trail and
permissions), and the sender's decisions (what it sends, signed how, to which address, and
what it records after each answer), on a real store with a clock that moves when told.

The sender is given an httpx transport that records each request and answers with a status
(its constructor's seam): what is tested here is the sender's own logic. A real receiver on
loopback is tested in tests/webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from service_harness import Harness, build_harness

from apitokens import __version__
from apitokens.domain import audit, events
from apitokens.domain.clock import SystemClock
from apitokens.domain.errors import NotFound, PermissionDenied, ValidationFailed
from apitokens.domain.events import Delivery, Webhook
from apitokens.domain.network import IPAddress
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import Principal
from apitokens.service.destinations import Destinations
from apitokens.service.webhooks import (
    MAX_WEBHOOKS,
    Sender,
    WebhookService,
    check_events,
    new_secret,
)
from apitokens.storage.memory import MemoryStore
from apitokens.storage.port import Store

PUBLIC = "93.184.216.34"
URL = "https://hooks.example.com/in?x=1"
STAMP = datetime(2030, 6, 1, 0, 0, 0, tzinfo=UTC)


class Resolver:
    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(answer) for answer in answers]

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        return list(self.answers)


class Stamp:
    def now(self) -> datetime:
        return STAMP


class Recorder(httpx.BaseTransport):
    """Records each request; answers with the next of ``statuses`` (then 204), or raises
    the next of ``errors`` when one is queued."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []
        self.errors: list[Exception] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        status = self.statuses.pop(0) if self.statuses else 204
        headers = {"location": "https://elsewhere.example.com/"} if status == 307 else {}
        return httpx.Response(status, headers=headers, content=b"ignored")


def service(harness: Harness, *answers: str) -> WebhookService:
    return WebhookService(
        harness.store, harness.clock, Destinations(False, Resolver(*(answers or (PUBLIC,))))
    )


def sender(harness: Harness, recorder: Recorder, **options: object) -> Sender:
    settings: dict[str, object] = {"timeout_seconds": 2.0, "retry_seconds": (5, 30)}
    settings.update(options)
    return Sender(
        harness.store,
        harness.clock,
        Destinations(False, Resolver(PUBLIC)),
        stamp_clock=Stamp(),
        transport=recorder,
        **settings,  # type: ignore[arg-type]
    )


def stored_deliveries(store: Store, hook_id: str) -> list[Delivery]:
    with store.unit() as unit:
        return list(unit.outbox.page(hook_id, 100, None))


def audit_events(store: Store) -> list[audit.AuditEvent]:
    with store.unit() as unit:
        return list(unit.audit.page(100, None, None, None))


# --- the event list and the secret ------------------------------------------------------


def test_events_default_to_all_and_keep_the_catalog_order() -> None:
    assert check_events(None) == events.EVENT_TYPES
    assert check_events([events.EXPIRED, events.CREATED, events.EXPIRED]) == (
        events.CREATED,
        events.EXPIRED,
    )


def test_unknown_or_no_events_are_refused() -> None:
    with pytest.raises(ValidationFailed) as unknown:
        check_events(["api_token.exploded", events.CREATED, 5])
    assert unknown.value.message == (
        "events: unknown event api_token.exploded, 5; accepted: " + ", ".join(events.EVENT_TYPES)
    )
    with pytest.raises(ValidationFailed) as empty:
        check_events([])
    assert empty.value.message == "events: give at least one event, or leave it out for all"


def test_a_secret_is_32_random_bytes_in_the_standard_form() -> None:
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


# --- registering, listing, deleting -----------------------------------------------------


def manager(harness: Harness, admin: Principal) -> Principal:
    """A caller that may register webhooks, from an address."""
    value = harness.create(admin, "hooks", (TOKEN_READ, TOKEN_MODIFY)).value
    return harness.login(value, "192.0.2.44")


def test_create_stores_the_webhook_and_audits_it(harness: Harness, admin: Principal) -> None:
    admin = manager(harness, admin)
    made = service(harness).create(admin, URL, [events.DELETED, events.CREATED], "ci hooks")
    assert made.url == URL
    assert made.events == (events.CREATED, events.DELETED)
    assert made.description == "ci hooks"
    assert made.created_at == harness.clock.now()
    assert made.created_by == admin.actor
    assert made.secret.startswith("whsec_")
    assert str(__import__("uuid").UUID(made.id, version=4)) == made.id
    with harness.store.unit() as unit:
        assert unit.webhooks.find(made.id) == made
    (event,) = [e for e in audit_events(harness.store) if e.action == audit.WEBHOOK_CREATE]
    assert (event.token_id, event.actor, event.client_ip, event.at) == (
        None,
        admin.actor,
        "192.0.2.44",
        harness.clock.now(),
    )
    assert event.detail == {
        "webhookId": made.id,
        "url": URL,
        "events": [events.CREATED, events.DELETED],
    }


def test_create_logs_the_id_never_the_secret(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apitokens.webhooks")
    made = service(harness).create(admin, URL, None, "")
    assert [(r.name, r.getMessage(), r.webhook_id) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("apitokens.webhooks", "webhook created", made.id)
    ]
    assert made.secret not in caplog.text


def test_create_refuses_a_long_description_a_bad_url_and_the_101st(
    harness: Harness, admin: Principal
) -> None:
    hooks = service(harness)
    assert hooks.create(admin, URL, None, "d" * 256).description == "d" * 256
    with pytest.raises(ValidationFailed) as long:
        hooks.create(admin, URL, None, "d" * 257)
    assert long.value.message == "description: longer than 256 characters"
    with pytest.raises(ValidationFailed) as private:
        service(harness, "10.0.0.1").create(admin, URL, None, "")
    assert private.value.message.startswith("url: the host 'hooks.example.com' resolves")
    for n in range(MAX_WEBHOOKS - 2):
        hooks.create(admin, URL, None, str(n))
    hooks.create(admin, URL, None, "the 100th")
    with pytest.raises(ValidationFailed) as full:
        hooks.create(admin, URL, None, "one too many")
    assert (full.value.field, full.value.message) == ("", "at most 100 webhooks; delete one first")
    with harness.store.unit() as unit:
        assert unit.webhooks.count() == MAX_WEBHOOKS


def test_permissions(harness: Harness, admin: Principal) -> None:
    hooks = service(harness)
    made = hooks.create(admin, URL, None, "")
    reader = harness.login(harness.create(admin, "reader", (TOKEN_READ,)).value)
    modifier = harness.login(harness.create(admin, "modifier", (TOKEN_MODIFY,)).value)
    for principal in (reader, modifier):
        with pytest.raises(PermissionDenied):
            hooks.create(principal, URL, None, "")
    assert [hook.id for hook in hooks.page(reader, None, None).webhooks] == [made.id]
    listed = hooks.deliveries(reader, made.id, None, None).deliveries
    assert [delivery.event for delivery in listed] == [events.CREATED, events.CREATED]
    for call in (
        lambda: hooks.page(modifier, None, None),
        lambda: hooks.deliveries(modifier, made.id, None, None),
        lambda: hooks.delete(reader, made.id),
    ):
        with pytest.raises(PermissionDenied):
            call()
    hooks.delete(modifier, made.id)


def test_page_is_newest_first_with_a_cursor(harness: Harness, admin: Principal) -> None:
    hooks = service(harness)
    made = []
    for n in range(4):
        made.append(hooks.create(admin, URL, None, str(n)))
        harness.clock.advance(1)
    first = hooks.page(admin, 3, None)
    assert [hook.description for hook in first.webhooks] == ["3", "2", "1"]
    assert first.next is not None
    second = hooks.page(admin, 3, first.next)
    assert [hook.description for hook in second.webhooks] == ["0"]
    assert second.next is None
    whole = hooks.page(admin, 4, None)
    assert [hook.id for hook in whole.webhooks] == [m.id for m in reversed(made)]
    assert whole.next is None
    assert len(hooks.page(admin, None, None).webhooks) == 4
    with pytest.raises(ValidationFailed):
        hooks.page(admin, 0, None)


def test_delete_removes_the_webhook_its_deliveries_and_audits(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apitokens.webhooks")
    hooks = service(harness)
    admin = manager(harness, admin)
    made = hooks.create(admin, URL, None, "")
    kept = hooks.create(admin, URL, None, "kept")
    harness.create(admin, "ci", (TOKEN_READ,))
    assert len(stored_deliveries(harness.store, made.id)) == 1
    harness.clock.advance(7)
    hooks.delete(admin, made.id)
    with harness.store.unit() as unit:
        assert unit.webhooks.find(made.id) is None
        assert unit.webhooks.find(kept.id) == kept
    assert stored_deliveries(harness.store, made.id) == []
    assert len(stored_deliveries(harness.store, kept.id)) == 1
    event = audit_events(harness.store)[0]
    assert (event.action, event.token_id, event.actor, event.client_ip, event.at) == (
        audit.WEBHOOK_DELETE,
        None,
        admin.actor,
        "192.0.2.44",
        harness.clock.now(),
    )
    assert event.detail == {"webhookId": made.id, "url": URL}
    assert caplog.records[-1].getMessage() == "webhook deleted"
    assert caplog.records[-1].webhook_id == made.id  # type: ignore[attr-defined]
    with pytest.raises(NotFound) as missing:
        hooks.delete(admin, made.id)
    assert missing.value.message == "no webhook with that id"


def test_deliveries_are_listed_newest_first_with_a_cursor(
    harness: Harness, admin: Principal
) -> None:
    hooks = service(harness)
    made = hooks.create(admin, URL, [events.CREATED], "")
    for name in ("a", "b", "c", "d"):
        harness.create(admin, name, (TOKEN_READ,))
        harness.clock.advance(1)
    first = hooks.deliveries(admin, made.id, 3, None)
    assert len(first.deliveries) == 3
    assert first.next is not None
    second = hooks.deliveries(admin, made.id, 3, first.next)
    assert len(second.deliveries) == 1
    assert second.next is None
    names = [d.body.split('"name":"')[1][0] for d in [*first.deliveries, *second.deliveries]]
    assert names == ["d", "c", "b", "a"]
    assert hooks.deliveries(admin, made.id, 4, None).next is None
    assert len(hooks.deliveries(admin, made.id, None, None).deliveries) == 4
    with pytest.raises(NotFound) as missing:
        hooks.deliveries(admin, "no-such-webhook", None, None)
    assert missing.value.message == "no webhook with that id"


# --- the sender -------------------------------------------------------------------------


def hook_and_event(harness: Harness, admin: Principal, url: str = URL) -> Webhook:
    made = service(harness).create(admin, url, [events.CREATED], "")
    harness.create(admin, "ci", (TOKEN_READ,))
    return made


def test_nothing_due_sends_nothing(harness: Harness, admin: Principal) -> None:
    recorder = Recorder()
    assert sender(harness, recorder).run_once() == 0
    assert recorder.requests == []


def test_a_delivery_is_signed_and_sent_to_the_checked_address(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apitokens.webhooks")
    made = hook_and_event(harness, admin)
    (pending,) = stored_deliveries(harness.store, made.id)
    recorder = Recorder()
    harness.clock.advance(3)
    assert sender(harness, recorder).run_once() == 1
    (request,) = recorder.requests
    assert request.method == "POST"
    assert (request.url.scheme, request.url.host, request.url.port) == ("https", PUBLIC, None)
    assert request.url.raw_path == b"/in?x=1"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == pending.body.encode()
    timestamp = str(int(STAMP.timestamp()))
    key = base64.b64decode(made.secret.removeprefix("whsec_"))
    signed = f"{pending.id}.{timestamp}.{pending.body}".encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sent = {name: request.headers[name] for name in request.headers}
    assert sent.pop("content-length") == str(len(pending.body.encode()))
    assert sent == {
        "host": "hooks.example.com",
        "accept": "*/*",
        "accept-encoding": request.headers["accept-encoding"],
        "connection": "keep-alive",
        "user-agent": f"apitokens-webhooks/{__version__}",
        "content-type": "application/json",
        "webhook-id": pending.id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{signature}",
    }
    (done,) = stored_deliveries(harness.store, made.id)
    assert done == replace(
        pending,
        status=events.DELIVERED,
        attempts=1,
        last_status_code=204,
        delivered_at=harness.clock.now(),
        next_attempt_at=None,
    )
    delivered = [r for r in caplog.records if r.getMessage() == "webhook delivered"]
    assert [
        (r.levelno, r.delivery_id, r.webhook_id, r.event, r.attempts, r.status_code)  # type: ignore[attr-defined]
        for r in delivered
    ] == [(logging.INFO, pending.id, made.id, events.CREATED, 1, 204)]
    assert sender(harness, recorder).run_once() == 0


@pytest.mark.parametrize(
    ("status", "delivered"), [(200, True), (299, True), (199, False), (300, False), (307, False)]
)
def test_only_a_2xx_answer_delivers(
    harness: Harness, admin: Principal, status: int, delivered: bool
) -> None:
    made = hook_and_event(harness, admin)
    recorder = Recorder()
    recorder.statuses = [status]
    assert sender(harness, recorder).run_once() == 1
    assert len(recorder.requests) == 1  # a redirect is not followed
    (after,) = stored_deliveries(harness.store, made.id)
    assert after.last_status_code == status
    assert after.status == (events.DELIVERED if delivered else events.PENDING)


def test_failures_are_retried_on_the_schedule_then_given_up(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apitokens.webhooks")
    made = hook_and_event(harness, admin)
    (pending,) = stored_deliveries(harness.store, made.id)
    recorder = Recorder()
    recorder.statuses = [500, 502, 503]
    send = sender(harness, recorder)
    start = harness.clock.now()
    assert send.run_once() == 1
    (after,) = stored_deliveries(harness.store, made.id)
    assert (after.status, after.attempts, after.last_status_code) == (events.PENDING, 1, 500)
    assert (after.next_attempt_at, after.delivered_at) == (start + timedelta(seconds=5), None)
    harness.clock.advance(4.999)
    assert send.run_once() == 0
    harness.clock.advance(0.001)
    assert send.run_once() == 1
    (after,) = stored_deliveries(harness.store, made.id)
    assert (after.status, after.attempts, after.last_status_code) == (events.PENDING, 2, 502)
    assert after.next_attempt_at == start + timedelta(seconds=35)
    harness.clock.advance(30)
    assert send.run_once() == 1
    (after,) = stored_deliveries(harness.store, made.id)
    assert after == replace(
        pending, status=events.FAILED, attempts=3, last_status_code=503, next_attempt_at=None
    )
    harness.clock.advance(86400)
    assert send.run_once() == 0
    failed = [
        (r.levelno, r.getMessage(), r.delivery_id, r.attempts, r.status_code)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.levelno == logging.WARNING
    ]
    assert failed == [
        (logging.WARNING, "webhook delivery failed; will retry", pending.id, 1, 500),
        (logging.WARNING, "webhook delivery failed; will retry", pending.id, 2, 502),
        (logging.WARNING, "webhook delivery failed", pending.id, 3, 503),
    ]
    assert {request.headers["webhook-id"] for request in recorder.requests} == {pending.id}
    assert {request.content for request in recorder.requests} == {pending.body.encode()}


def test_no_retries_fails_at_the_first_failure(harness: Harness, admin: Principal) -> None:
    made = hook_and_event(harness, admin)
    recorder = Recorder()
    recorder.statuses = [500]
    assert sender(harness, recorder, retry_seconds=()).run_once() == 1
    (after,) = stored_deliveries(harness.store, made.id)
    assert (after.status, after.attempts, after.next_attempt_at) == (events.FAILED, 1, None)


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), OSError("down")]
)
def test_a_receiver_not_reached_is_a_failed_attempt(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    caplog.set_level(logging.INFO, logger="apitokens.webhooks")
    made = hook_and_event(harness, admin)
    (pending,) = stored_deliveries(harness.store, made.id)
    recorder = Recorder()
    recorder.errors = [error]
    caplog.clear()
    assert sender(harness, recorder).run_once() == 1
    (after,) = stored_deliveries(harness.store, made.id)
    assert (after.status, after.attempts, after.last_status_code) == (events.PENDING, 1, None)
    not_reached, failed = caplog.records
    assert (not_reached.levelno, not_reached.getMessage()) == (
        logging.INFO,
        "webhook receiver not reached",
    )
    assert not_reached.delivery_id == pending.id  # type: ignore[attr-defined]
    assert not_reached.error == type(error).__name__  # type: ignore[attr-defined]
    assert failed.status_code is None  # type: ignore[attr-defined]


def test_a_destination_now_private_is_not_sent_to(harness: Harness, admin: Principal) -> None:
    made = hook_and_event(harness, admin)
    recorder = Recorder()
    send = Sender(
        harness.store,
        harness.clock,
        Destinations(False, Resolver("127.0.0.1")),
        timeout_seconds=2.0,
        retry_seconds=(5,),
        transport=recorder,
    )
    assert send.run_once() == 1
    assert recorder.requests == []
    (after,) = stored_deliveries(harness.store, made.id)
    assert (after.status, after.attempts, after.last_status_code) == (events.PENDING, 1, None)


def test_a_pass_sends_at_most_a_batch(harness: Harness, admin: Principal) -> None:
    made = service(harness).create(admin, URL, [events.CREATED], "")
    for n in range(5):
        harness.create(admin, f"t{n}", (TOKEN_READ,))
    recorder = Recorder()
    send = sender(harness, recorder, batch=2)
    assert send.batch == 2
    assert [send.run_once() for _ in range(4)] == [2, 2, 1, 0]
    assert len(recorder.requests) == 5
    assert {d.status for d in stored_deliveries(harness.store, made.id)} == {events.DELIVERED}
    assert sender(harness, recorder).batch == 8


def test_a_pass_that_crashes_sends_again_after_the_lease(
    harness: Harness, admin: Principal
) -> None:
    made = hook_and_event(harness, admin)
    recorder = Recorder()
    recorder.errors = [RuntimeError("the process dies here")]
    send = sender(harness, recorder, timeout_seconds=2.5)
    start = harness.clock.now()
    with pytest.raises(RuntimeError):
        send.run_once()
    (leased,) = stored_deliveries(harness.store, made.id)
    lease = timedelta(seconds=4 * 2.5 + 30)
    assert (leased.attempts, leased.next_attempt_at) == (0, start + lease)
    harness.clock.advance(lease.total_seconds() - 0.001)
    assert send.run_once() == 0
    harness.clock.advance(0.001)
    assert send.run_once() == 1
    (done,) = stored_deliveries(harness.store, made.id)
    assert (done.status, done.attempts) == (events.DELIVERED, 1)
    assert len(recorder.requests) == 2


def test_the_client_times_out_never_redirects_ignores_proxies_and_closes(
    harness: Harness,
) -> None:
    send = sender(harness, Recorder(), timeout_seconds=2.5)
    assert send.client.timeout == httpx.Timeout(2.5)
    assert send.client.follow_redirects is False
    assert send.client.trust_env is False
    assert send.retry_seconds == (5, 30)
    assert isinstance(Sender(
        harness.store, harness.clock, Destinations(True), timeout_seconds=1, retry_seconds=[1]
    ).stamp_clock, SystemClock)  # fmt: skip
    send.close()
    assert send.client.is_closed


class Claiming:
    """The store, where another instance claims every due delivery just before this one
    (between its check that something is due and its claim)."""

    def __init__(self, store: Store, harness: Harness) -> None:
        self.store = store
        self.harness = harness

    def unit(self, *, write: bool = False) -> Any:
        if write:
            now = self.harness.clock.now()
            with self.store.unit(write=True) as other:
                other.outbox.claim(now, 100, now + timedelta(minutes=5))
        return self.store.unit(write=write)


def test_deliveries_another_instance_claimed_are_not_sent(
    harness: Harness, admin: Principal
) -> None:
    hook_and_event(harness, admin)
    recorder = Recorder()
    racing = Sender(
        Claiming(harness.store, harness),  # type: ignore[arg-type]
        harness.clock,
        Destinations(False, Resolver(PUBLIC)),
        timeout_seconds=2.0,
        retry_seconds=(5,),
        transport=recorder,
    )
    assert racing.run_once() == 0
    assert recorder.requests == []


class Gathering(Recorder):
    """Answers only when ``count`` requests are in flight at once (or fails after 10 s,
    which only a sender that does not send a batch in parallel would wait for)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(count, timeout=10)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.barrier.wait()
        return super().handle_request(request)


def test_a_batch_is_sent_in_parallel(harness: Harness, admin: Principal) -> None:
    made = service(harness).create(admin, URL, [events.CREATED], "")
    for n in range(8):
        harness.create(admin, f"t{n}", (TOKEN_READ,))
    gathering = Gathering(8)
    assert sender(harness, gathering).run_once() == 8
    assert {d.status for d in stored_deliveries(harness.store, made.id)} == {events.DELIVERED}


def test_a_delivery_whose_webhook_is_gone_is_a_failed_attempt() -> None:
    store = MemoryStore()  # no foreign key: a delivery may outlive its webhook here
    harness = build_harness(store)
    orphan = Delivery("msg_1", "gone", events.CREATED, "{}", harness.clock.now(),
                      next_attempt_at=harness.clock.now())  # fmt: skip
    with store.unit(write=True) as unit:
        unit.outbox.add(orphan)
    recorder = Recorder()
    assert sender(harness, recorder).run_once() == 1
    assert recorder.requests == []
    with store.unit(write=True) as unit:
        (after,) = unit.outbox.claim(
            harness.clock.now() + timedelta(days=1), 10, harness.clock.now()
        )
    assert (after.attempts, after.last_status_code, after.status) == (1, None, events.PENDING)
