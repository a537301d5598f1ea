"""The event outbox alone, on a real store: which webhooks get a delivery, its exact body,
what a revocation and a use of a rotated-out value send, and the per-token throttle."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apitokens.domain import audit, events
from apitokens.domain.audit import AuditEvent
from apitokens.domain.events import Delivery, Webhook
from apitokens.domain.tokens import SYSTEM, Actor, Token
from apitokens.service.events import (
    ROTATED_VALUE_USED_INTERVAL,
    EventOutbox,
    NoEvents,
    message_id,
    rfc3339,
)
from apitokens.storage.port import Store

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
TOKEN_ID = "00000000-0000-4000-8000-000000000001"
OTHER_ID = "00000000-0000-4000-8000-000000000002"
ACTOR = Actor("00000000-0000-4000-8000-0000000000aa", "api-token")
MESSAGE_ID = re.compile(r"msg_[0-9a-f]{32}")


class Clock:
    def __init__(self) -> None:
        self.moment = T0

    def now(self) -> datetime:
        return self.moment


def render(token: Token) -> dict[str, Any]:
    return {"id": token.id, "name": token.name}


def token(token_id: str = TOKEN_ID, name: str = "caf\u00e9") -> Token:
    return Token(token_id, name, (), (), T0, Actor("cli", SYSTEM))


def hook(hook_id: str, wanted: tuple[str, ...] = events.EVENT_TYPES) -> Webhook:
    return Webhook(hook_id, "http://127.0.0.1/h", wanted, "", T0, None, "whsec_x")


@pytest.fixture
def outbox() -> EventOutbox:
    return EventOutbox(Clock(), render)


def setup(store: Store, *hooks: Webhook, tokens: tuple[Token, ...] = (token(),)) -> None:
    store.prepare()
    with store.unit(write=True) as unit:
        for made in tokens:
            unit.tokens.add(made, made.id.replace("-", "")[:32] * 2)
        for each in hooks:
            unit.webhooks.add(each)


def deliveries(store: Store, hook_id: str) -> list[Delivery]:
    with store.unit() as unit:
        return list(unit.outbox.page(hook_id, 100, None))


def bodies(store: Store, hook_id: str) -> list[dict[str, Any]]:
    return [json.loads(delivery.body) for delivery in deliveries(store, hook_id)]


def test_one_delivery_per_interested_webhook_with_the_exact_body(
    store: Store, outbox: EventOutbox
) -> None:
    setup(
        store,
        hook("h1", (events.CREATED,)),
        hook("h2"),
        hook("h3", (events.DELETED, events.UPDATED)),
    )
    outbox.clock.moment = T0 + timedelta(microseconds=123456)  # type: ignore[attr-defined]
    with store.unit(write=True) as unit:
        outbox.emit(unit, events.CREATED, token(), ACTOR, "192.0.2.1", {"extra": [1, "two"]})
    first, second = deliveries(store, "h1") + deliveries(store, "h2")
    assert deliveries(store, "h3") == []
    expected = (
        '{"type":"api_token.created","timestamp":"2030-01-01T12:00:00.123Z",'
        f'"data":{{"token":{{"id":"{TOKEN_ID}","name":"caf\u00e9"}},'
        f'"actor":{{"id":"{ACTOR.id}","type":"api-token"}},'
        '"clientIP":"192.0.2.1","extra":[1,"two"]}}'
    )
    moment = T0 + timedelta(microseconds=123456)
    for delivery, hook_id in ((first, "h1"), (second, "h2")):
        assert MESSAGE_ID.fullmatch(delivery.id)
        assert delivery.webhook_id == hook_id
        assert delivery.event == events.CREATED
        assert delivery.body == expected
        assert delivery.created_at == moment
        assert delivery.next_attempt_at == moment
        assert (delivery.status, delivery.attempts) == (events.PENDING, 0)
        assert (delivery.last_status_code, delivery.delivered_at) == (None, None)
    assert first.id != second.id


def test_without_an_actor_or_extra_fields(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h"))
    with store.unit(write=True) as unit:
        outbox.emit(unit, events.EXPIRED, token())
    (body,) = bodies(store, "h")
    assert body == {
        "type": "api_token.expired",
        "timestamp": "2030-01-01T12:00:00.000Z",
        "data": {"token": {"id": TOKEN_ID, "name": "caf\u00e9"}, "actor": None, "clientIP": None},
    }


def test_no_webhook_wants_it_no_delivery(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h", (events.DELETED,)))
    with store.unit(write=True) as unit:
        outbox.emit(unit, events.CREATED, token())
    assert deliveries(store, "h") == []


def test_message_ids_are_unique_and_start_with_the_time() -> None:
    made = [message_id() for _ in range(50)]
    assert len(set(made)) == 50
    assert all(MESSAGE_ID.fullmatch(made_id) for made_id in made)
    stamps = [int(made_id[4:20], 16) for made_id in made]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] / 1e9 - datetime.now(UTC).timestamp()) < 3600


def test_rfc3339_keeps_milliseconds_and_writes_z() -> None:
    assert rfc3339(T0) == "2030-01-01T12:00:00.000Z"
    assert rfc3339(T0.replace(microsecond=999999)) == "2030-01-01T12:00:00.999Z"


def revocation(action: str, token_id: str = TOKEN_ID) -> AuditEvent:
    return AuditEvent(action, token_id, ACTOR, "198.51.100.7", T0, {})


def test_a_deletion_sends_deleted_with_the_actor(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h"), hook("leaks", (events.LEAKED,)))
    with store.unit(write=True) as unit:
        outbox.revoking(unit, TOKEN_ID, revocation(audit.DELETE))
    assert [d.event for d in deliveries(store, "h")] == [events.DELETED]
    (body,) = bodies(store, "h")
    assert body["data"] == {
        "token": {"id": TOKEN_ID, "name": "caf\u00e9"},
        "actor": {"id": ACTOR.id, "type": "api-token"},
        "clientIP": "198.51.100.7",
    }
    assert deliveries(store, "leaks") == []


def test_a_leak_sends_leaked_revoked_without_an_actor(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h"), hook("deletes", (events.DELETED,)))
    with store.unit(write=True) as unit:
        outbox.revoking(unit, TOKEN_ID, revocation(audit.LEAK_REPORTED))
    (body,) = bodies(store, "h")
    assert body["type"] == events.LEAKED
    assert body["data"] == {
        "token": {"id": TOKEN_ID, "name": "caf\u00e9"},
        "actor": None,
        "clientIP": "198.51.100.7",
        "revoked": True,
    }
    assert deliveries(store, "deletes") == []


def test_a_revocation_of_a_missing_token_sends_nothing(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h"))
    with store.unit(write=True) as unit:
        outbox.revoking(unit, OTHER_ID, revocation(audit.DELETE, OTHER_ID))
        outbox.revoking(unit, OTHER_ID, revocation(audit.LEAK_REPORTED, OTHER_ID))
    assert deliveries(store, "h") == []


def used(at: datetime, token_id: str | None = TOKEN_ID) -> AuditEvent:
    return AuditEvent(audit.ROTATED_VALUE_USED, token_id, None, "203.0.113.9", at, {})


def test_a_rotated_out_value_used_is_sent_at_most_once_a_minute_per_token(
    store: Store, outbox: EventOutbox
) -> None:
    setup(store, hook("h"), tokens=(token(), token(OTHER_ID, "other")))
    interval = ROTATED_VALUE_USED_INTERVAL
    assert interval == timedelta(minutes=1)
    moments = [  # (when, which token, how many sent so far)
        (T0, TOKEN_ID, 1),
        (T0 + timedelta(seconds=1), OTHER_ID, 2),  # another token: its own minute
        (T0 + interval - timedelta(microseconds=1), TOKEN_ID, 2),  # within the minute
        (T0 + interval, TOKEN_ID, 3),  # a minute later
        (T0 + interval + timedelta(seconds=59), TOKEN_ID, 3),
    ]
    for at, token_id, count in moments:
        with store.unit(write=True) as unit:
            outbox.noticed(unit, used(at, token_id))
        assert len(deliveries(store, "h")) == count
    sent = bodies(store, "h")
    assert [(body["type"], body["data"]["token"]["id"]) for body in sent] == [
        (events.ROTATED_VALUE_USED, TOKEN_ID),
        (events.ROTATED_VALUE_USED, OTHER_ID),
        (events.ROTATED_VALUE_USED, TOKEN_ID),
    ]
    assert sent[0]["data"]["actor"] is None
    assert sent[0]["data"]["clientIP"] == "203.0.113.9"
    assert set(sent[0]["data"]) == {"token", "actor", "clientIP"}


def test_other_audit_events_send_nothing(store: Store, outbox: EventOutbox) -> None:
    setup(store, hook("h"))
    with store.unit(write=True) as unit:
        outbox.noticed(unit, AuditEvent(audit.AUTH_FAILURE_BURST, TOKEN_ID, None, None, T0))
        outbox.noticed(unit, used(T0, None))
    assert deliveries(store, "h") == []
    with store.unit(write=True) as unit:
        outbox.noticed(unit, used(T0))  # not throttled by the events above
    assert len(deliveries(store, "h")) == 1


def test_a_use_of_a_deleted_token_sends_nothing_but_counts(
    store: Store, outbox: EventOutbox
) -> None:
    setup(store, hook("h"))
    with store.unit(write=True) as unit:
        outbox.noticed(unit, used(T0, OTHER_ID))
    assert deliveries(store, "h") == []
    assert outbox._last_rotated_use == {OTHER_ID: T0}


def test_the_throttle_forgets_quiet_tokens_past_ten_thousand(
    store: Store, outbox: EventOutbox
) -> None:
    setup(store, hook("h"))
    now = T0 + timedelta(hours=1)
    later = now + timedelta(microseconds=1)
    cutoff = later - ROTATED_VALUE_USED_INTERVAL  # of the second use below
    quiet = {f"quiet-{n}": T0 for n in range(9_998)}
    edge = cutoff  # exactly at the cutoff: forgotten
    recent = cutoff + timedelta(microseconds=1)
    outbox._last_rotated_use = {**quiet, "edge": edge, "recent": recent}
    with store.unit(write=True) as unit:
        outbox.noticed(unit, used(now))  # 10,000 held: not pruned yet
    assert len(outbox._last_rotated_use) == 10_001
    with store.unit(write=True) as unit:
        outbox.noticed(unit, used(later, OTHER_ID))
    assert outbox._last_rotated_use == {
        "recent": recent,
        TOKEN_ID: now,
        OTHER_ID: later,
    }


def test_no_events_sends_nothing(store: Store) -> None:
    setup(store, hook("h"))
    sink = NoEvents()
    with store.unit(write=True) as unit:
        sink.emit(unit, events.CREATED, token())
        sink.revoking(unit, TOKEN_ID, revocation(audit.DELETE))
        sink.noticed(unit, used(T0))
    assert deliveries(store, "h") == []


def test_every_token_change_writes_its_event(store: Store) -> None:
    from service_harness import build_harness

    from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ

    harness = build_harness(store)
    with store.unit(write=True) as unit:
        unit.webhooks.add(hook("h"))
    admin_value = harness.bootstrap().value
    caller = harness.login(admin_value, "192.0.2.5")
    actor = {"id": caller.actor.id, "type": caller.actor.type}
    made = harness.create(caller, "ci", (TOKEN_READ,))
    harness.tokens.update(caller, made.token.id, harness.spec("ci-2", (TOKEN_MODIFY,)))
    old = made.value
    harness.tokens.rotate(caller, made.token.id, 60)
    harness.clock.advance(61)
    harness.services.leaks.report(old, "198.51.100.1")  # rotated out: not revoked
    doomed = harness.create(caller, "doomed", ())
    harness.tokens.delete(caller, doomed.token.id)
    leaked = harness.create(caller, "leaked", ())
    harness.services.leaks.report(leaked.value, "198.51.100.2")  # current: revoked
    sent = [
        (body["type"], body["data"]["token"]["id"], body["data"]["token"]["name"],
         body["data"]["actor"], body["data"]["clientIP"],
         {k: v for k, v in body["data"].items() if k not in ("token", "actor", "clientIP")})
        for body in bodies(store, "h")
    ]  # fmt: skip
    token_id = made.token.id
    assert sorted(sent, key=str) == sorted(
        [
            (events.CREATED, caller.token.id, "admin", {"id": "admin", "type": "system"}, None, {}),
            (events.CREATED, token_id, "ci", actor, "192.0.2.5", {}),
            (events.UPDATED, token_id, "ci-2", actor, "192.0.2.5", {}),
            (events.ROTATED, token_id, "ci-2", actor, "192.0.2.5", {"gracePeriodSeconds": 60}),
            (events.LEAKED, token_id, "ci-2", None, "198.51.100.1", {"revoked": False}),
            (events.CREATED, doomed.token.id, "doomed", actor, "192.0.2.5", {}),
            (events.DELETED, doomed.token.id, "doomed", actor, "192.0.2.5", {}),
            (events.CREATED, leaked.token.id, "leaked", actor, "192.0.2.5", {}),
            (events.LEAKED, leaked.token.id, "leaked", None, "198.51.100.2", {"revoked": True}),
        ],
        key=str,
    )
