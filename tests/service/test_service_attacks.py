"""Attacks on the services (hardening, second round): each test is one class of attack.

Limits are privileges; a value in its grace period is not the owner; no probing without
Read; rotation is bounded; the failure limiter keeps its offenders; keyless requests are
not failed logins; refusals are audited. On memory, SQLite and PostgreSQL stores.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from service_harness import Harness

from apitokens.domain import audit
from apitokens.domain.authorization import IN_GRACE, NOT_CHANGEABLE
from apitokens.domain.errors import (
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    TooManyFailures,
    TooManyRotations,
)
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import Principal, TokenSpec
from apitokens.domain.validation import build_spec
from apitokens.service.limiter import FailureLimiter

MANAGER = (TOKEN_MODIFY, TOKEN_READ)


def _fenced(harness: Harness, admin: Principal) -> Principal:
    """A manager fenced to 127.0.0.0/8 that expires in ten minutes."""
    spec = build_spec(
        harness.catalog,
        "fenced",
        MANAGER,
        ["127.0.0.0/8"],
        harness.clock.now() + timedelta(minutes=10),
        expires_at_given=True,
    )
    value = harness.tokens.create(admin.actor, spec, admin).value
    return harness.login(value, "127.0.0.1")


def _spec(
    harness: Harness, blocks: list[str] | None, expires_at: datetime | None, given: bool = True
) -> TokenSpec:
    return build_spec(harness.catalog, "child", (TOKEN_READ,), blocks, expires_at, given)


def _events(harness: Harness, action: str) -> list[audit.AuditEvent]:
    harness.usage.flush()
    with harness.store.unit() as unit:
        return list(unit.audit.page(100, None, None, action))


# -- limits are privileges ------------------------------------------------------------------


def test_a_fenced_token_cannot_make_an_unfenced_or_longer_lived_child(
    harness: Harness, admin: Principal
) -> None:
    fenced = _fenced(harness, admin)
    soon = harness.clock.now() + timedelta(minutes=5)
    with pytest.raises(PermissionDenied, match="allowedCIDRBlocks"):
        harness.tokens.create(fenced.actor, _spec(harness, [], soon), fenced)
    with pytest.raises(PermissionDenied, match="allowedCIDRBlocks"):
        harness.tokens.create(fenced.actor, _spec(harness, ["10.0.0.0/8"], soon), fenced)
    with pytest.raises(PermissionDenied, match="expiresAt"):
        harness.tokens.create(fenced.actor, _spec(harness, ["127.0.0.1/32"], None), fenced)
    later = harness.clock.now() + timedelta(hours=1)
    with pytest.raises(PermissionDenied, match="expiresAt"):
        harness.tokens.create(fenced.actor, _spec(harness, ["127.0.0.1/32"], later), fenced)
    child = harness.tokens.create(fenced.actor, _spec(harness, ["127.0.0.1/32"], soon), fenced)
    assert child.token.allowed_cidr_blocks == ("127.0.0.1/32",)
    with harness.store.unit() as unit:
        assert unit.tokens.count() == 3  # admin, fenced, the one allowed child


def test_a_fenced_token_cannot_lift_or_extend_its_own_limits(
    harness: Harness, admin: Principal
) -> None:
    fenced = _fenced(harness, admin)
    own = fenced.token
    unfenced = build_spec(harness.catalog, "fenced", MANAGER, [])
    with pytest.raises(PermissionDenied, match="allowedCIDRBlocks"):
        harness.tokens.update(fenced, "self", unfenced)
    renewed = build_spec(
        harness.catalog, "fenced", MANAGER, None, own.expires_at + timedelta(minutes=1), True
    )  # type: ignore[operator]
    with pytest.raises(PermissionDenied, match="expiresAt"):
        harness.tokens.update(fenced, "self", renewed)
    forever = build_spec(harness.catalog, "fenced", MANAGER, None, None, True)
    with pytest.raises(PermissionDenied, match="expiresAt"):
        harness.tokens.update(fenced, "self", forever)
    with harness.store.unit() as unit:
        assert unit.tokens.find(own.id) == own  # nothing was written
    refusals = _events(harness, audit.REFUSED)
    assert len(refusals) == 3
    assert {event.detail["action"] for event in refusals} == {"update"}
    assert all(event.actor == fenced.actor for event in refusals)


def test_a_fenced_token_cannot_take_over_an_unfenced_one(
    harness: Harness, admin: Principal
) -> None:
    fenced = _fenced(harness, admin)
    open_token = harness.create(admin, "open", (TOKEN_READ,))
    with pytest.raises(PermissionDenied, match="allowedCIDRBlocks"):
        harness.tokens.rotate(fenced, open_token.token.id, None)


# -- a value in its grace period is not the owner ---------------------------------------------


def test_a_value_in_its_grace_period_can_read_but_not_change_anything(
    harness: Harness, admin: Principal
) -> None:
    issued = harness.create(admin, "victim", MANAGER)
    holder = harness.login(issued.value)
    new_value = harness.tokens.rotate(holder, "self", 3600).value
    old = harness.login(issued.value)  # still authenticates during the grace period
    assert old.rotated_out
    assert harness.tokens.get(old, "self").id == issued.token.id
    for attempt in (
        lambda: harness.tokens.rotate(old, "self", 0),
        lambda: harness.tokens.update(old, "self", harness.spec("mine", MANAGER)),
        lambda: harness.tokens.delete(old, "self"),
        lambda: harness.create(old, "backdoor"),
    ):
        with pytest.raises(PermissionDenied) as refused:
            attempt()
        assert refused.value.message == IN_GRACE
    assert harness.login(new_value).token.name == "victim"  # the rightful holder keeps it
    uses = _events(harness, audit.ROTATED_VALUE_USED)
    assert [event.detail for event in uses] == [{"inGracePeriod": True}]
    harness.clock.advance(3601)
    with pytest.raises(InvalidCredentials):
        harness.login(issued.value)


# -- no probing without Read ------------------------------------------------------------------


def test_without_read_existing_and_unknown_ids_look_the_same(
    harness: Harness, admin: Principal
) -> None:
    modifier = harness.login(harness.create(admin, "modifier", (TOKEN_MODIFY,)).value)
    wide = harness.create(admin, "wide", ("AlertRead",))
    for action in (
        lambda target: harness.tokens.rotate(modifier, target, None),
        lambda target: harness.tokens.update(modifier, target, harness.spec("x")),
    ):
        answers = []
        for target in (wide.token.id, "00000000-0000-0000-0000-000000000000"):
            with pytest.raises(PermissionDenied) as refused:
                action(target)
            answers.append(refused.value.message)
        assert answers == [NOT_CHANGEABLE, NOT_CHANGEABLE]
        assert "AlertRead" not in NOT_CHANGEABLE
    reader = harness.login(harness.create(admin, "reader", MANAGER).value)
    with pytest.raises(NotFound):
        harness.tokens.rotate(reader, "00000000-0000-0000-0000-000000000000", None)


# -- rotation is bounded ----------------------------------------------------------------------


def test_self_rotation_is_limited_per_token(harness: Harness, admin: Principal) -> None:
    harness.tokens.rotations = FailureLimiter(3, 60.0)
    issued = harness.create(admin, "spinner")
    value = issued.value
    for _ in range(3):
        value = harness.tokens.rotate(harness.login(value), "self", None).value
    with pytest.raises(TooManyRotations) as limited:
        harness.tokens.rotate(harness.login(value), "self", None)
    assert limited.value.message.startswith("too many rotations of this API token; retry in ")
    assert 1 <= limited.value.retry_after <= 60
    other = harness.create(admin, "other")  # other tokens are not affected
    harness.tokens.rotate(admin, other.token.id, None)


def test_ended_values_are_pruned(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "rotating")
    harness.tokens.rotate(admin, issued.token.id, 60)
    harness.clock.advance(61)
    harness.services.background.prune()
    with harness.store.unit() as unit:
        assert unit.tokens.digest_count() == 2  # admin's and the current value


# -- the failure limiter ----------------------------------------------------------------------


def test_spraying_addresses_does_not_reset_a_real_offender() -> None:
    now = [0.0]
    limiter = FailureLimiter(5, 60.0, clock=lambda: now[0], max_tracked=100)
    for _ in range(5):
        limiter.fail("198.51.100.7")
    with pytest.raises(TooManyFailures):
        limiter.check("198.51.100.7")
    for number in range(10_000):  # one failure each from many addresses
        limiter.fail(f"2001:db8::{number:x}")
    assert len(limiter) <= 100
    with pytest.raises(TooManyFailures):
        limiter.check("198.51.100.7")


def test_requests_without_a_key_are_not_failed_logins(harness: Harness, admin: Principal) -> None:
    harness.services.limiter.limit = 3
    for _ in range(30):
        with pytest.raises(InvalidCredentials):
            harness.login(None, "192.0.2.1")
    assert harness.login(admin_value(harness), "192.0.2.1").token.name == "again"
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            harness.login("apitk_junk", "192.0.2.1")
    with pytest.raises(TooManyFailures):
        harness.login(None, "192.0.2.1")


def admin_value(harness: Harness) -> str:
    return harness.bootstrap("again").value


# -- refused addresses are audited, and the answer says little ---------------------------------


def test_a_refused_address_is_recorded_and_not_described(
    harness: Harness, admin: Principal
) -> None:
    value = harness.create(admin, "fenced", (), ["192.0.2.0/24"]).value
    with pytest.raises(PermissionDenied) as refused:
        harness.login(value, "198.51.100.1")
    assert "192.0.2.0" not in refused.value.message
    assert "198.51.100.1" not in refused.value.message
    events = _events(harness, audit.ADDRESS_REFUSED)
    assert [(event.client_ip, event.at) for event in events] == [
        ("198.51.100.1", harness.clock.now())
    ]


def test_a_child_made_without_expires_at_ends_with_its_maker(
    harness: Harness, admin: Principal
) -> None:
    fenced = _fenced(harness, admin)
    spec = build_spec(harness.catalog, "child", (TOKEN_READ,), ["127.0.0.1/32"])
    child = harness.tokens.create(fenced.actor, spec, fenced)
    assert child.token.expires_at == fenced.token.expires_at
