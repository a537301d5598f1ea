"""Expiry warnings, daily usage and the lifecycle jobs, on a real store with a clock that
moves when told: which warning is sent when (once each), the usage report's days and
counts, and what the background passes do (and log) when a pass fails."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from service_harness import Harness, build_harness

from apitokens.domain import events
from apitokens.domain.audit import AuditEvent
from apitokens.domain.errors import NotFound, PermissionDenied, ValidationFailed
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.text import forbidden_character, lone_surrogate, printable
from apitokens.domain.tokens import Actor, Principal, Token
from apitokens.service.destinations import Destinations
from apitokens.service.expiry import EXPIRED_LEVEL, ExpiryScanner
from apitokens.service.lifecycle import MAX_BATCHES_PER_PASS, Lifecycle
from apitokens.service.webhooks import Sender
from apitokens.storage.port import Store, UnitOfWork

DAY = 86400
HOUR = 3600


class Sink:
    """Records the events a scanner emits (the outbox's seam)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any] | None]] = []

    def emit(
        self,
        unit: UnitOfWork,
        event_type: str,
        token: Token,
        actor: Actor | None = None,
        client_ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        assert actor is None and client_ip is None
        assert unit is not None and unit.tokens.find(token.id) == token  # the scan's unit
        self.sent.append((event_type, token.id, dict(extra) if extra is not None else None))

    def revoking(self, unit: UnitOfWork, token_id: str, event: AuditEvent) -> None:
        raise AssertionError("not used")

    def noticed(self, unit: UnitOfWork, event: AuditEvent) -> None:
        raise AssertionError("not used")


def expiring(harness: Harness, admin: Principal, name: str, seconds: float) -> str:
    spec = harness.spec(name, (TOKEN_READ,))
    at = harness.clock.now() + timedelta(seconds=seconds)
    spec = type(spec)(spec.name, spec.permissions, spec.allowed_cidr_blocks, at, True)
    return harness.tokens.create(admin.actor, spec, admin).token.id


def scanner(harness: Harness, sink: Sink, batch: int = 200) -> ExpiryScanner:
    return ExpiryScanner(harness.store, harness.clock, sink, [DAY, HOUR, DAY], batch=batch)


def expiring_event(token_id: str, level: int) -> tuple[str, str, dict[str, Any]]:
    return (events.EXPIRING, token_id, {"thresholdSeconds": level})


def test_each_threshold_is_warned_once_then_expiry(harness: Harness, admin: Principal) -> None:
    sink = Sink()
    scan = scanner(harness, sink)
    assert scan.levels == [EXPIRED_LEVEL, HOUR, DAY] and EXPIRED_LEVEL == 0
    token = expiring(harness, admin, "soon", 2 * DAY)
    assert scan.run_once() == 0
    harness.clock.advance(DAY - 1)
    assert scan.run_once() == 0
    harness.clock.advance(1)  # exactly a day left
    assert scan.run_once() == 1
    assert scan.run_once() == 0
    harness.clock.advance(DAY - HOUR)  # exactly an hour left
    assert scan.run_once() == 1
    harness.clock.advance(HOUR - 1)
    assert scan.run_once() == 0
    harness.clock.advance(1)  # expired now
    assert scan.run_once() == 1
    harness.clock.advance(10 * DAY)
    assert scan.run_once() == 0
    assert sink.sent == [
        expiring_event(token, DAY),
        expiring_event(token, HOUR),
        (events.EXPIRED, token, None),
    ]


def test_a_token_first_seen_past_thresholds_gets_the_nearest_only(
    harness: Harness, admin: Principal
) -> None:
    sink = Sink()
    scan = scanner(harness, sink)
    in_half_an_hour = expiring(harness, admin, "short", HOUR / 2)
    assert scan.run_once() == 1
    harness.clock.advance(HOUR)
    assert scan.run_once() == 1
    assert scan.run_once() == 0
    assert sink.sent == [
        expiring_event(in_half_an_hour, HOUR),
        (events.EXPIRED, in_half_an_hour, None),
    ]


def test_a_token_found_expired_gets_expired_only(harness: Harness, admin: Principal) -> None:
    sink = Sink()
    scan = scanner(harness, sink)
    gone = expiring(harness, admin, "gone", 60)
    harness.clock.advance(2 * DAY)
    assert scan.run_once() == 1
    assert scan.run_once() == 0
    assert sink.sent == [(events.EXPIRED, gone, None)]


def test_every_due_token_is_warned_whatever_the_batch(harness: Harness, admin: Principal) -> None:
    sink = Sink()
    made = {expiring(harness, admin, f"t{n}", HOUR / 2 + n) for n in range(5)}
    assert scanner(harness, sink, batch=2).run_once() == 5
    assert {token for _, token, _ in sink.sent} == made
    assert {event for event, _, _ in sink.sent} == {events.EXPIRING}
    exact = Sink()
    assert scanner(harness, exact, batch=5).run_once() == 0
    assert ExpiryScanner(harness.store, harness.clock, exact, []).batch == 200


def test_two_scanners_warn_once(harness: Harness, admin: Principal) -> None:
    first, second = Sink(), Sink()
    token = expiring(harness, admin, "soon", HOUR / 2)
    assert scanner(harness, first).run_once() == 1
    assert scanner(harness, second).run_once() == 0
    assert (first.sent, second.sent) == ([expiring_event(token, HOUR)], [])


class Racing:
    """The store, where another instance marks ``token_id``'s warning right after this
    scanner read what is due, before it marks it."""

    def __init__(self, store: Store, token_id: str, level: int) -> None:
        self.store = store
        self.token_id = token_id
        self.level = level

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[Any]:
        with self.store.unit(write=write) as unit:
            yield _RacingUnit(unit, self) if write else unit


class _RacingUnit:
    def __init__(self, unit: UnitOfWork, race: Racing) -> None:
        self._unit = unit
        self._race = race

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)

    @property
    def expiry_warnings(self) -> Any:
        return self

    def unwarned(self, threshold_seconds: int, until: Any, limit: int) -> Any:
        due = self._unit.expiry_warnings.unwarned(threshold_seconds, until, limit)
        for token in due:
            if token.id == self._race.token_id and token.expires_at is not None:
                self._unit.expiry_warnings.mark(token.id, token.expires_at, self._race.level)
        return due

    def mark(self, token_id: str, expires_at: Any, threshold_seconds: int) -> bool:
        return self._unit.expiry_warnings.mark(token_id, expires_at, threshold_seconds)


def test_a_warning_another_instance_marked_meanwhile_is_not_sent(
    harness: Harness, admin: Principal
) -> None:
    first = expiring(harness, admin, "first", HOUR / 2)
    second = expiring(harness, admin, "second", HOUR / 2 + 1)
    sink = Sink()
    racing = Racing(harness.store, first, HOUR)
    scan = ExpiryScanner(racing, harness.clock, sink, [HOUR])  # type: ignore[arg-type]
    assert scan.run_once() == 1  # the next one is still sent
    assert sink.sent == [expiring_event(second, HOUR)]


# --- daily usage ------------------------------------------------------------------------


def test_daily_usage_counts_written_and_pending_uses(harness: Harness, admin: Principal) -> None:
    report = harness.services.lifecycle.usage_report
    made = harness.create(admin, "ci", (TOKEN_READ,))
    harness.login(made.value)
    harness.login(made.value)
    harness.usage.flush()
    harness.clock.advance(DAY)
    harness.login(made.value)  # not written yet
    today = harness.clock.now().date()
    yesterday = today - timedelta(days=1)
    assert report.daily(admin, made.token.id, 3) == [
        (today - timedelta(days=2), 0),
        (yesterday, 2),
        (today, 1),
    ]
    assert report.daily(admin, made.token.id, 1) == [(today, 1)]
    whole = report.daily(admin, made.token.id, None)
    assert len(whole) == 30
    assert whole[0] == (today - timedelta(days=29), 0)
    assert whole[-2:] == [(yesterday, 2), (today, 1)]
    assert len(report.daily(admin, made.token.id, 90)) == 90


def test_a_token_reads_its_own_usage_without_permission(harness: Harness, admin: Principal) -> None:
    report = harness.services.lifecycle.usage_report
    made = harness.create(admin, "bare", ())
    bare = harness.login(made.value)
    today = harness.clock.now().date()
    assert report.daily(bare, "self", 1) == [(today, 1)]
    assert report.daily(bare, made.token.id, 1) == [(today, 1)]
    with pytest.raises(PermissionDenied):
        report.daily(bare, admin.token.id, 1)
    reader = harness.login(harness.create(admin, "reader", (TOKEN_READ,)).value)
    assert report.daily(reader, made.token.id, 1) == [(today, 1)]
    modifier = harness.login(harness.create(admin, "modifier", (TOKEN_MODIFY,)).value)
    with pytest.raises(PermissionDenied):
        report.daily(modifier, made.token.id, 1)


@pytest.mark.parametrize("days", [0, -1, 91])
def test_usage_days_out_of_range_are_refused(harness: Harness, admin: Principal, days: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        harness.services.lifecycle.usage_report.daily(admin, "self", days)
    assert refused.value.message == "days: must be between 1 and 90"


def test_usage_of_an_unknown_token_is_not_found(harness: Harness, admin: Principal) -> None:
    report = harness.services.lifecycle.usage_report
    with pytest.raises(NotFound) as missing:
        report.daily(admin, "00000000-0000-4000-8000-000000000009", 1)
    assert missing.value.message == "no API token with that id"
    assert report.daily(admin, "self", 1) == [(harness.clock.now().date(), 1)]  # its login
    assert isinstance(report.daily(admin, "self", 1)[0][0], date)


# --- the jobs ---------------------------------------------------------------------------


class Counting(httpx.BaseTransport):
    def __init__(self) -> None:
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return httpx.Response(204)


def lifecycle_with(harness: Harness, sender: Sender) -> Lifecycle:
    built = harness.services.lifecycle
    return Lifecycle(
        built.settings, built.outbox, built.webhooks, sender, built.expiry, built.usage_report
    )


def test_a_delivery_pass_sends_whole_batches_up_to_a_bound(
    harness: Harness, admin: Principal
) -> None:
    from apitokens.service.webhooks import WebhookService

    WebhookService(harness.store, harness.clock, Destinations(True)).create(
        admin, "http://receiver.internal/", [events.CREATED], ""
    )
    for n in range(MAX_BATCHES_PER_PASS + 2):
        harness.create(admin, f"t{n}", ())
    transport = Counting()
    sender = Sender(
        harness.store,
        harness.clock,
        Destinations(True),
        timeout_seconds=1,
        retry_seconds=(),
        batch=1,
        transport=transport,
    )
    jobs = lifecycle_with(harness, sender)
    jobs.deliver()
    assert transport.sent == MAX_BATCHES_PER_PASS == 100
    jobs.deliver()
    assert transport.sent == MAX_BATCHES_PER_PASS + 2
    jobs.deliver()
    assert transport.sent == MAX_BATCHES_PER_PASS + 2
    jobs.close()
    assert sender.client.is_closed


class Failing:
    batch = 8

    def run_once(self) -> int:
        raise RuntimeError("the database is gone")

    def close(self) -> None:
        return None


def test_a_failed_pass_is_logged_not_raised(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    built = harness.services.lifecycle
    broken = Lifecycle(
        built.settings,
        built.outbox,
        built.webhooks,
        Failing(),  # type: ignore[arg-type]
        Failing(),  # type: ignore[arg-type]
        built.usage_report,
    )
    caplog.set_level(logging.WARNING, logger="apitokens.webhooks")
    broken.deliver()
    broken.scan()
    assert [(r.name, r.levelno, r.getMessage(), r.error) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("apitokens.webhooks", logging.WARNING, "webhook delivery pass failed", "RuntimeError"),
        ("apitokens.webhooks", logging.WARNING, "expiry warning scan failed", "RuntimeError"),
    ]


def test_the_jobs_and_their_settings(store: Store) -> None:
    harness = build_harness(
        store,
        webhook_poll_seconds=2.5,
        expiry_scan_seconds=30,
        webhook_timeout_seconds=3,
        webhook_retry_seconds=(7, 11),
        expiry_warnings=(600,),
        webhook_allow_private=True,
    )
    built = harness.services.lifecycle
    assert [(name, every) for name, every, _ in built.jobs()] == [
        ("webhooks", 2.5),
        ("expiry", 30),
    ]
    assert [run for _, _, run in built.jobs()] == [built.deliver, built.scan]
    assert built.sender.retry_seconds == (7, 11)
    assert built.sender.client.timeout == httpx.Timeout(3)
    assert built.sender.destinations.allow_private is True
    assert built.webhooks.destinations.allow_private is True
    assert built.expiry.levels == [0, 600]
    assert built.expiry.sink is built.outbox
    assert built.usage_report.recorder is harness.usage
    assert built.webhooks.store is store and built.webhooks.clock is harness.clock
    assert built.sender.store is store and built.sender.clock is harness.clock
    assert built.expiry.store is store and built.expiry.clock is harness.clock
    assert built.usage_report.store is store and built.usage_report.clock is harness.clock
    assert built.outbox is harness.tokens.events
    assert harness.services.lifecycle.settings.webhook_poll_seconds == 2.5


def test_the_expiry_job_warns(harness: Harness, admin: Principal) -> None:
    from apitokens.service.webhooks import WebhookService

    hook = WebhookService(harness.store, harness.clock, Destinations(True)).create(
        admin, "http://receiver.internal/", [events.EXPIRED], ""
    )
    expiring(harness, admin, "soon", 60)
    harness.clock.advance(61)
    harness.services.lifecycle.scan()
    with harness.store.unit() as unit:
        (delivery,) = unit.outbox.page(hook.id, 10, None)
    assert delivery.event == events.EXPIRED


# --- text rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("plain caf\u00e9 \u2603", None),
        ("a\x00", "U+0000 at position 1"),
        ("ab\x1f", "U+001F at position 2"),
        ("\x7f", "U+007F at position 0"),
        ("x\x9f", "U+009F at position 1"),
        ("\u061c", "U+061C at position 0"),
        ("\u200e\u200f", "U+200E at position 0"),
        ("..\u202a", "U+202A at position 2"),
        ("\u202e", "U+202E at position 0"),
        ("\u2066", "U+2066 at position 0"),
        ("\u2069", "U+2069 at position 0"),
        ("\u2028", "U+2028 at position 0"),
        ("\u2029", "U+2029 at position 0"),
        ("ok\ud800", "U+D800 at position 2"),
        ("\udfff", "U+DFFF at position 0"),
        ("\x20\xa0\u200d\u202f\u2065\u206a\ue000", None),
    ],
)
def test_forbidden_characters(text: str, found: str | None) -> None:
    assert forbidden_character(text) == found


def test_lone_surrogates_and_printable() -> None:
    assert lone_surrogate("fine \x00") is None
    assert lone_surrogate("a\ud83d") == "U+D83D at position 1"
    assert lone_surrogate("\udc00") == "U+DC00 at position 0"
    assert printable("caf\u00e9") == "caf\u00e9"
    assert printable("a\x1b[31m\u202e\ud800b\x7f") == "a\\u001b[31m\\u202e\\ud800b\\u007f"
