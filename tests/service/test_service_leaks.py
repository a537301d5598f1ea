"""Leaked-value reports, on the services: what is revoked, what is only recorded, what is
ignored, the per-address limit, and what the log says (never the value)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from service_harness import Harness

from apitokens.domain import audit
from apitokens.domain.errors import InvalidCredentials, StorageUnavailable, TooManyFailures
from apitokens.domain.tokens import Principal
from apitokens.domain.validation import build_spec
from apitokens.service.background import Readiness
from apitokens.service.leaks import LeakReports, TooManyReports
from apitokens.service.limiter import FailureLimiter

IP = "198.51.100.7"


def leak_events(harness: Harness) -> list[audit.AuditEvent]:
    with harness.store.unit() as unit:
        return list(unit.audit.page(100, None, None, audit.LEAK_REPORTED))


def leak_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, dict[str, object]]]:
    keys = ("reason", "client_ip", "token_id")
    return [
        (
            record.levelno,
            record.getMessage(),
            {key: getattr(record, key) for key in keys if hasattr(record, key)},
        )
        for record in caplog.records
        if record.name == "apitokens.leaks"
    ]


def test_a_live_value_reported_is_revoked_and_recorded(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    issued = harness.create(admin, "leaky")
    caplog.set_level(logging.INFO, "apitokens.leaks")
    harness.services.leaks.report(issued.value, IP)
    with pytest.raises(InvalidCredentials):
        harness.login(issued.value)
    with harness.store.unit() as unit:
        assert unit.tokens.find(issued.token.id) is None
    [event] = leak_events(harness)
    assert (event.action, event.token_id, event.actor, event.client_ip, event.at) == (
        audit.LEAK_REPORTED,
        issued.token.id,
        None,
        IP,
        harness.clock.now(),
    )
    assert event.detail == {"name": "leaky", "revoked": True}
    assert leak_logs(caplog) == [
        (logging.WARNING, "leaked value reported; token revoked", {"token_id": issued.token.id})
    ]
    assert issued.value not in caplog.text
    # The same value again: it is unknown now, and nothing more happens.
    caplog.clear()
    harness.services.leaks.report(issued.value, None)
    assert len(leak_events(harness)) == 1
    assert leak_logs(caplog) == [
        (logging.INFO, "leak report ignored", {"reason": "unknown", "client_ip": None})
    ]


def test_a_value_of_an_expired_token_is_revoked_too(harness: Harness, admin: Principal) -> None:
    spec = build_spec(
        harness.catalog,
        "short-lived",
        (),
        [],
        harness.clock.now() + timedelta(minutes=1),
        expires_at_given=True,
    )
    issued = harness.tokens.create(admin.actor, spec, admin)
    harness.clock.advance(60)
    harness.services.leaks.report(issued.value, IP)
    with harness.store.unit() as unit:
        assert unit.tokens.find(issued.token.id) is None
    assert [e.detail for e in leak_events(harness)] == [{"name": "short-lived", "revoked": True}]


def test_a_value_still_in_its_grace_period_is_revoked(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "rotating")
    harness.tokens.rotate(admin, issued.token.id, 60)
    harness.clock.advance(59)
    harness.services.leaks.report(issued.value, IP)
    with harness.store.unit() as unit:
        assert unit.tokens.find(issued.token.id) is None


def test_a_value_rotated_out_past_its_grace_is_only_recorded(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    issued = harness.create(admin, "rotated")
    fresh = harness.tokens.rotate(admin, issued.token.id, 60)
    harness.clock.advance(60)  # the old value ends exactly now
    caplog.set_level(logging.INFO, "apitokens.leaks")
    harness.services.leaks.report(issued.value, IP)
    assert harness.login(fresh.value).token.id == issued.token.id  # the token is kept
    [event] = leak_events(harness)
    assert (event.token_id, event.actor, event.client_ip, event.at) == (
        issued.token.id,
        None,
        IP,
        harness.clock.now(),
    )
    assert event.detail == {"name": "rotated", "revoked": False}
    assert leak_logs(caplog) == [
        (
            logging.WARNING,
            "leaked value reported; it was rotated out already",
            {"token_id": issued.token.id},
        )
    ]


@pytest.mark.parametrize("junk", ["", "not a value", "apitk_" + "A" * 49])
def test_junk_and_unknown_values_are_ignored(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture, junk: str
) -> None:
    caplog.set_level(logging.INFO, "apitokens.leaks")
    harness.services.leaks.report(junk, IP)
    harness.services.leaks.report(harness.services.codec.issue().value, IP)
    assert leak_events(harness) == []
    assert leak_logs(caplog) == [
        (logging.INFO, "leak report ignored", {"reason": "malformed", "client_ip": IP}),
        (logging.INFO, "leak report ignored", {"reason": "unknown", "client_ip": IP}),
    ]
    assert harness.login(harness.bootstrap("other").value).token.name == "other"


def test_a_report_that_loses_the_race_with_a_delete_changes_nothing(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    issued = harness.create(admin, "raced")
    harness.tokens.delete(admin, issued.token.id)
    caplog.set_level(logging.INFO, "apitokens.leaks")
    harness.services.leaks._revoke(issued.token, IP, harness.clock.now())
    assert leak_events(harness) == []
    assert leak_logs(caplog) == []


def test_reports_wait_until_the_database_is_ready(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "early")
    s = harness.services
    leaks = LeakReports(s.store, s.codec, s.tokens, FailureLimiter(5, 60), s.clock, Readiness())
    with pytest.raises(StorageUnavailable):
        leaks.report(issued.value, IP)
    leaks.report("junk", IP)  # junk needs no database
    assert harness.login(issued.value).token.id == issued.token.id


def test_reports_are_limited_per_address(harness: Harness) -> None:
    now = [0.0]
    s = harness.services
    limiter = FailureLimiter(2, 30, clock=lambda: now[0])
    leaks = LeakReports(s.store, s.codec, s.tokens, limiter, s.clock, s.leaks.readiness)
    leaks.admit(IP)
    leaks.admit(IP)
    with pytest.raises(TooManyReports) as caught:
        leaks.admit(IP)
    assert isinstance(caught.value, TooManyFailures)
    assert caught.value.retry_after == 30
    assert caught.value.message == (
        "too many leaked-value reports from this address; retry in 30 s"
    )
    leaks.admit("198.51.100.8")
    now[0] = 30.0
    leaks.admit(IP)
