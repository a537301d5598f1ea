"""What each token operation records, field by field: the token it returns, the audit
event it writes (action, target, actor, address, time, detail), the usage it shows or
forgets, the rotation budget it spends, and the exact answer for a missing target."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_harness import Harness, build_harness

from apitokens.domain import audit
from apitokens.domain.errors import NotFound, PermissionDenied, TooManyRotations, ValidationFailed
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import SYSTEM, Actor, Principal
from apitokens.domain.validation import build_spec
from apitokens.storage.port import Store

IP = "192.0.2.5"
MISSING = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture
def caller(harness: Harness, admin: Principal) -> Principal:
    """The administrator, calling from IP."""
    value = harness.tokens.rotate(admin, admin.token.id, 0).value
    return harness.login(value, IP)


def events(harness: Harness, action: str) -> list[audit.AuditEvent]:
    harness.usage.flush()
    with harness.store.unit() as unit:
        return list(unit.audit.page(100, None, None, action))


def test_create_records_who_when_and_from_where(harness: Harness, caller: Principal) -> None:
    harness.clock.advance(5)
    issued = harness.create(caller, "made", (TOKEN_READ,))
    now = harness.clock.now()
    token = issued.token
    assert (token.created_at, token.updated_at, token.created_by, token.updated_by) == (
        now,
        now,
        caller.actor,
        caller.actor,
    )
    assert (token.allowed_cidr_blocks, token.expires_at, token.rotated_at) == ((), None, None)
    event = events(harness, audit.CREATE)[0]
    assert (event.token_id, event.actor, event.client_ip, event.at, event.detail) == (
        token.id,
        caller.actor,
        IP,
        now,
        {},
    )
    system = harness.tokens.create(Actor("cli", SYSTEM), harness.spec("by the system"))
    event = events(harness, audit.CREATE)[0]
    assert (event.token_id, event.actor, event.client_ip) == (
        system.token.id,
        Actor("cli", SYSTEM),
        None,
    )


def test_update_records_the_change_and_keeps_what_was_not_given(
    harness: Harness, caller: Principal
) -> None:
    made = harness.create(caller, "before", (TOKEN_READ,), ["10.0.0.0/8"]).token
    manager = harness.login(harness.create(caller, "manager", (TOKEN_MODIFY, TOKEN_READ)).value, IP)
    caller = manager  # the update is by another token than the creator
    harness.clock.advance(7)
    spec = build_spec(harness.catalog, "after", (TOKEN_MODIFY,), None)
    updated = harness.tokens.update(caller, made.id, spec)
    now = harness.clock.now()
    assert (updated.name, updated.permissions, updated.allowed_cidr_blocks) == (
        "after",
        (TOKEN_MODIFY,),
        ("10.0.0.0/8",),
    )
    assert (updated.updated_at, updated.updated_by, updated.created_at) == (
        now,
        caller.actor,
        made.created_at,
    )
    event = events(harness, audit.UPDATE)[0]
    assert (event.token_id, event.actor, event.client_ip, event.at, event.detail) == (
        made.id,
        caller.actor,
        IP,
        now,
        {},
    )


def test_rotate_records_the_grace_period_and_the_times(harness: Harness, caller: Principal) -> None:
    made = harness.create(caller, "rotated").token
    harness.clock.advance(3)
    rotated = harness.tokens.rotate(caller, made.id, 30)
    now = harness.clock.now()
    assert (rotated.token.rotated_at, rotated.token.updated_at, rotated.token.updated_by) == (
        now,
        now,
        caller.actor,
    )
    assert rotated.token.created_at == made.created_at
    event = events(harness, audit.ROTATE)[0]
    assert (event.token_id, event.actor, event.client_ip, event.at, event.detail) == (
        made.id,
        caller.actor,
        IP,
        now,
        {"gracePeriodSeconds": 30},
    )
    harness.tokens.rotate(caller, made.id, None)
    assert events(harness, audit.ROTATE)[0].detail == {"gracePeriodSeconds": 0}


def test_a_token_rotates_itself_by_self(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value, IP)
    rotated = harness.tokens.rotate(bare, "self", None)
    assert rotated.token.id == bare.token.id
    assert harness.login(rotated.value).token.id == bare.token.id
    event = events(harness, audit.ROTATE)[0]
    assert (event.token_id, event.actor, event.client_ip) == (bare.token.id, bare.actor, IP)


def test_the_rotation_budget_is_per_rotated_token(harness: Harness, admin: Principal) -> None:
    first = harness.create(admin, "first").token.id
    second = harness.create(admin, "second").token.id
    for _ in range(10):
        harness.tokens.rotate(admin, first, None)
    with pytest.raises(TooManyRotations) as caught:
        harness.tokens.rotate(admin, first, None)
    assert caught.value.message.startswith("too many rotations of this API token; retry in ")
    harness.tokens.rotate(admin, second, None)  # another token has its own budget
    harness.tokens.rotate(admin, "self", None)  # ... and so has the caller


def test_a_token_rotating_itself_spends_its_own_budget(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "busy")
    value = issued.value
    for _ in range(10):
        value = harness.tokens.rotate(harness.login(value), "self", None).value
    with pytest.raises(TooManyRotations):
        harness.tokens.rotate(harness.login(value), "self", None)
    with pytest.raises(TooManyRotations):
        harness.tokens.rotate(admin, issued.token.id, None)


def test_delete_records_the_event_and_forgets_pending_usage(
    harness: Harness, admin: Principal, caller: Principal
) -> None:
    doomed = harness.create(admin, "doomed")
    harness.login(doomed.value, "192.0.2.99")
    assert harness.usage.pending(doomed.token.id)[0] is not None
    harness.tokens.delete(caller, doomed.token.id)
    assert harness.usage.pending(doomed.token.id) == (None, ())
    event = events(harness, audit.DELETE)[0]
    assert (event.token_id, event.actor, event.client_ip, event.at) == (
        doomed.token.id,
        caller.actor,
        IP,
        harness.clock.now(),
    )
    with harness.store.unit() as unit:
        assert unit.tokens.find(doomed.token.id) is None


def test_a_token_deletes_itself_by_self(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value, IP)
    harness.tokens.delete(bare, "self")
    event = events(harness, audit.DELETE)[0]
    assert (event.token_id, event.actor, event.client_ip) == (bare.token.id, bare.actor, IP)


def test_missing_targets_get_the_same_answer(harness: Harness, admin: Principal) -> None:
    for operation in (
        lambda: harness.tokens.get(admin, MISSING),
        lambda: harness.tokens.delete(admin, MISSING),
        lambda: harness.tokens.rotate(admin, MISSING, None),
        lambda: harness.tokens.update(admin, MISSING, harness.spec("x")),
    ):
        with pytest.raises(NotFound) as caught:
            operation()
        assert caught.value.message == "no API token with that id"


def test_get_shows_usage_not_yet_written(harness: Harness, admin: Principal) -> None:
    used = harness.create(admin, "used")
    principal = harness.login(used.value, "192.0.2.77")
    now = harness.clock.now()
    shown = harness.tokens.get(admin, used.token.id)
    assert (shown.last_used_at, shown.last_used_ips) == (now, ("192.0.2.77",))
    itself = harness.tokens.get(principal, "self")
    assert (itself.last_used_at, itself.last_used_ips) == (now, ("192.0.2.77",))
    assert harness.tokens.current(principal).last_used_ips == ("192.0.2.77",)
    assert harness.tokens.get(principal, used.token.id).last_used_at == now
    listed = {t.id: t for t in harness.tokens.list(admin, None, None).tokens}
    assert listed[used.token.id].last_used_ips == ("192.0.2.77",)


def test_reading_another_token_needs_read(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    with pytest.raises(PermissionDenied):
        harness.tokens.get(bare, admin.token.id)
    assert harness.tokens.get(bare, "self").id == bare.token.id


def test_a_page_that_holds_exactly_the_rest_has_no_next(harness: Harness, admin: Principal) -> None:
    for n in range(3):
        harness.clock.advance(1)
        harness.create(admin, f"t{n}")
    everything = harness.tokens.list(admin, 4, None)  # admin + three
    assert [t.name for t in everything.tokens] == ["t2", "t1", "t0", "admin"]
    assert everything.next is None
    first = harness.tokens.list(admin, 3, None)
    assert [t.name for t in first.tokens] == ["t2", "t1", "t0"]
    assert first.next is not None
    rest = harness.tokens.list(admin, 3, first.next)
    assert [t.name for t in rest.tokens] == ["admin"]
    assert rest.next is None
    assert len(harness.tokens.list(admin, 1, None).tokens) == 1


def test_a_refusal_is_recorded_with_the_action_and_the_reason(
    harness: Harness, admin: Principal
) -> None:
    manager = (TOKEN_MODIFY, TOKEN_READ)
    reader = harness.login(harness.create(admin, "narrower", manager).value, IP)
    with pytest.raises(PermissionDenied) as caught:
        harness.tokens.rotate(reader, admin.token.id, None)  # admin is wider
    event = events(harness, audit.REFUSED)[0]
    assert (event.token_id, event.actor, event.client_ip, event.at) == (
        admin.token.id,
        reader.actor,
        IP,
        harness.clock.now(),
    )
    assert event.detail == {"action": "rotate", "reason": caught.value.message}


def test_an_update_that_changes_nothing_still_moves_updated_at(
    harness: Harness, admin: Principal
) -> None:
    made = harness.create(admin, "same", (TOKEN_READ,)).token
    harness.clock.advance(timedelta(hours=1).total_seconds())
    again = harness.tokens.update(admin, made.id, harness.spec("same", (TOKEN_READ,)))
    assert again.updated_at == harness.clock.now()
    assert again.updated_at != made.updated_at


def test_a_token_without_modify_cannot_delete_another(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    other = harness.create(admin, "other").token
    with pytest.raises(PermissionDenied):
        harness.tokens.delete(bare, other.id)
    with harness.store.unit() as unit:
        assert unit.tokens.find(other.id) == other


def test_an_update_without_modify_is_refused_before_any_lookup(
    harness: Harness, admin: Principal
) -> None:
    reader = harness.login(harness.create(admin, "reader", (TOKEN_READ,)).value)
    for target in (MISSING, admin.token.id):
        with pytest.raises(PermissionDenied) as caught:
            harness.tokens.update(reader, target, harness.spec("x"))
        assert "OrganizationAPITokenModify" in caught.value.message
    assert events(harness, audit.REFUSED) == []  # refused up front: no target was read


def test_an_update_keeps_the_expiry_unless_one_is_given(harness: Harness, admin: Principal) -> None:
    soon = harness.clock.now() + timedelta(days=1)
    spec = build_spec(harness.catalog, "expiring", (), [], soon, expires_at_given=True)
    made = harness.tokens.create(admin.actor, spec, admin).token
    assert made.expires_at == soon
    kept = harness.tokens.update(admin, made.id, harness.spec("renamed"))
    assert kept.expires_at == soon
    later = soon + timedelta(days=1)
    given = build_spec(harness.catalog, "renamed", (), None, later, expires_at_given=True)
    assert harness.tokens.update(admin, made.id, given).expires_at == later
    cleared = build_spec(harness.catalog, "renamed", (), None, None, expires_at_given=True)
    assert harness.tokens.update(admin, made.id, cleared).expires_at is None
    with harness.store.unit() as unit:
        stored = unit.tokens.find(made.id)
    assert stored is not None and stored.expires_at is None
    past = build_spec(
        harness.catalog,
        "renamed",
        (),
        None,
        harness.clock.now() - timedelta(seconds=1),
        expires_at_given=True,
    )
    with pytest.raises(ValidationFailed) as caught:
        harness.tokens.update(admin, made.id, past)
    assert caught.value.message == "expiresAt: must be in the future"


def test_a_token_without_modify_cannot_rotate_another(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    other = harness.create(admin, "other").token
    for target in (other.id, MISSING):
        with pytest.raises(PermissionDenied) as caught:
            harness.tokens.rotate(bare, target, None)
        assert "OrganizationAPITokenModify" in caught.value.message
    assert events(harness, audit.REFUSED) == []  # refused up front: no target was read
    with harness.store.unit() as unit:
        assert unit.tokens.find(other.id) == other


def test_the_configured_rotation_limit_applies(store: Store) -> None:
    harness = build_harness(store, rotation_limit=2)
    admin = harness.login(harness.bootstrap().value)
    target = harness.create(admin, "target").token.id
    harness.tokens.rotate(admin, target, None)
    harness.tokens.rotate(admin, target, None)
    with pytest.raises(TooManyRotations):
        harness.tokens.rotate(admin, target, None)
