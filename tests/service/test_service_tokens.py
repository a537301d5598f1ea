"""TokenService and Authenticator on a real migrated database: the use cases end to end."""

from __future__ import annotations

import pytest
from service_harness import Harness

from apitokens.domain import audit
from apitokens.domain.errors import InvalidCredentials, NotFound, PermissionDenied, TokenExpired
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import API_TOKEN, SYSTEM, Actor, Principal
from apitokens.domain.validation import build_spec
from apitokens.domain.values import hash_value

MANAGER = (TOKEN_MODIFY, TOKEN_READ)


# -- create ------------------------------------------------------------------------------


def test_bootstrap_token_is_made_by_the_system_with_every_permission(harness: Harness) -> None:
    issued = harness.bootstrap("root")
    with harness.store.unit() as unit:
        stored = unit.tokens.find(issued.token.id)
    assert stored == issued.token
    assert stored.created_by == Actor("root", SYSTEM)
    assert stored.updated_by == Actor("root", SYSTEM)
    assert stored.permissions == harness.catalog.names


def test_only_the_digest_of_a_new_value_is_stored(harness: Harness) -> None:
    issued = harness.bootstrap()
    with harness.store.unit() as unit:
        found = unit.tokens.find_by_digest(hash_value(issued.value))
        by_value = unit.tokens.find_by_digest(issued.value)
    assert found == (issued.token, None)
    assert by_value is None


def test_created_token_records_its_creator(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "ci", (TOKEN_READ,), ["10.0.0.0/8"])
    assert issued.token.created_by == Actor(admin.token.id, API_TOKEN)
    assert issued.token.created_at == harness.clock.now()
    assert issued.token.allowed_cidr_blocks == ("10.0.0.0/8",)
    assert harness.login(issued.value, "10.1.2.3").token.id == issued.token.id


def test_create_writes_an_audit_event(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "ci")
    with harness.store.unit() as unit:
        events = unit.audit.page(10, None, issued.token.id, None)
    assert [(event.action, event.actor) for event in events] == [(audit.CREATE, admin.actor)]


def test_create_needs_the_modify_permission(harness: Harness, admin: Principal) -> None:
    reader = harness.login(harness.create(admin, "reader", (TOKEN_READ,)).value)
    with pytest.raises(PermissionDenied, match=TOKEN_MODIFY):
        harness.create(reader, "x")


def test_create_refuses_permissions_the_caller_lacks(harness: Harness, admin: Principal) -> None:
    manager = harness.login(harness.create(admin, "manager", MANAGER).value)
    with pytest.raises(PermissionDenied, match="does not hold: AlertRead"):
        harness.create(manager, "x", ("AlertRead", TOKEN_READ))


# -- authenticate ------------------------------------------------------------------------


def test_unknown_value_is_invalid(harness: Harness) -> None:
    harness.bootstrap()
    with pytest.raises(InvalidCredentials) as caught:
        harness.login(harness.tokens.codec.issue().value)
    assert caught.value.message == "invalid or missing API key"


def test_allowed_cidr_blocks_are_enforced(harness: Harness, admin: Principal) -> None:
    value = harness.create(admin, "net", (), ["192.0.2.0/24"]).value
    assert harness.login(value, "192.0.2.9").token.name == "net"
    with pytest.raises(PermissionDenied) as refused:
        harness.login(value, "198.51.100.1")
    # The refusal names neither the address nor the token's blocks (the holder of a
    # value learns nothing about its fence from a refusal).
    assert refused.value.message == (
        "this API key may not be used from this address (see its allowedCIDRBlocks)"
    )


def test_expired_token_is_refused(harness: Harness, admin: Principal) -> None:
    spec = build_spec(
        harness.catalog, "short", (), None, harness.clock.now().replace(hour=13), True
    )
    value = harness.tokens.create(admin.actor, spec, admin).value
    harness.login(value)
    harness.clock.advance(3600)
    with pytest.raises(TokenExpired, match="expired"):
        harness.login(value)


# -- get and list ------------------------------------------------------------------------


def test_get_needs_the_read_permission_except_for_self(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    assert harness.tokens.get(bare, "self").id == bare.token.id
    with pytest.raises(PermissionDenied, match=TOKEN_READ):
        harness.tokens.get(bare, admin.token.id)


def test_get_of_an_unknown_id_is_not_found(harness: Harness, admin: Principal) -> None:
    with pytest.raises(NotFound):
        harness.tokens.get(admin, "00000000-0000-0000-0000-000000000000")


def test_list_is_newest_first(harness: Harness, admin: Principal) -> None:
    for name in ("one", "two", "three"):
        harness.clock.advance(1)
        harness.create(admin, name)
    page = harness.tokens.list(admin, None, None)
    assert [token.name for token in page.tokens] == ["three", "two", "one", "admin"]
    assert page.next is None


def test_pages_of_tokens_made_in_one_instant_neither_skip_nor_repeat(
    harness: Harness, admin: Principal
) -> None:
    made = {harness.create(admin, f"t{index}").token.id for index in range(8)}
    seen: list[str] = []
    cursor = None
    while True:
        page = harness.tokens.list(admin, 3, cursor)
        seen.extend(token.id for token in page.tokens)
        if page.next is None:
            break
        cursor = page.next
    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == made | {admin.token.id}


def test_list_needs_the_read_permission(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    with pytest.raises(PermissionDenied, match=TOKEN_READ):
        harness.tokens.list(bare, None, None)


# -- update ------------------------------------------------------------------------------


def test_update_without_blocks_keeps_them(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "net", (), ["10.0.0.0/8"])
    harness.clock.advance(5)
    updated = harness.tokens.update(admin, issued.token.id, harness.spec("renamed", (TOKEN_READ,)))
    assert updated.name == "renamed"
    assert updated.permissions == (TOKEN_READ,)
    assert updated.allowed_cidr_blocks == ("10.0.0.0/8",)
    assert updated.updated_at == harness.clock.now()
    assert updated.created_at == issued.token.created_at


def test_update_with_empty_blocks_clears_them(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "net", (), ["10.0.0.0/8"])
    updated = harness.tokens.update(admin, issued.token.id, harness.spec("net", (), []))
    assert updated.allowed_cidr_blocks == ()
    with harness.store.unit() as unit:
        assert unit.tokens.find(issued.token.id) == updated


def test_update_takes_effect_on_authentication(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "net")
    harness.login(issued.value, "198.51.100.1")
    harness.tokens.update(admin, issued.token.id, harness.spec("net", (), ["10.0.0.0/8"]))
    with pytest.raises(PermissionDenied):
        harness.login(issued.value, "198.51.100.1")


def test_narrower_token_cannot_update_a_broader_one(harness: Harness, admin: Principal) -> None:
    manager = harness.login(harness.create(admin, "manager", MANAGER).value)
    broad = harness.create(admin, "broad", (*MANAGER, "AlertRead"))
    with pytest.raises(PermissionDenied) as refused:
        harness.tokens.update(manager, broad.token.id, harness.spec("broad", (TOKEN_READ,)))
    assert refused.value.message == (
        "cannot change an API token whose permissions are wider than this API token's"
    )


# -- rotate ------------------------------------------------------------------------------


def test_rotate_replaces_the_value_at_once(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "ci", (TOKEN_READ,))
    harness.clock.advance(1)
    rotated = harness.tokens.rotate(admin, issued.token.id, None)
    assert rotated.value != issued.value
    assert rotated.token.id == issued.token.id
    assert rotated.token.rotated_at == harness.clock.now()
    assert harness.login(rotated.value).token.id == issued.token.id
    with pytest.raises(InvalidCredentials) as caught:
        harness.login(issued.value)
    assert caught.value.message == "invalid or missing API key"


def test_rotate_with_grace_keeps_the_old_value_for_a_while(
    harness: Harness, admin: Principal
) -> None:
    issued = harness.create(admin, "ci")
    harness.tokens.rotate(admin, issued.token.id, 60)
    harness.clock.advance(59)
    assert harness.login(issued.value).token.id == issued.token.id
    harness.clock.advance(1)
    with pytest.raises(InvalidCredentials):
        harness.login(issued.value)


def test_token_without_permissions_rotates_itself(harness: Harness, admin: Principal) -> None:
    bare = harness.login(harness.create(admin, "bare").value)
    rotated = harness.tokens.rotate(bare, "self", None)
    assert rotated.token.updated_by == bare.actor
    assert harness.login(rotated.value).token.id == bare.token.id


def test_narrower_token_cannot_rotate_a_broader_one(harness: Harness, admin: Principal) -> None:
    manager = harness.login(harness.create(admin, "manager", MANAGER).value)
    with pytest.raises(PermissionDenied) as refused:
        harness.tokens.rotate(manager, admin.token.id, None)
    assert "UserRead" not in refused.value.message
    assert refused.value.message == (
        "cannot change an API token whose permissions are wider than this API token's"
    )


# -- delete ------------------------------------------------------------------------------


def test_delete_removes_the_token_and_its_values(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "ci")
    harness.login(issued.value)
    harness.tokens.delete(admin, issued.token.id)
    with harness.store.unit() as unit:
        assert unit.tokens.find(issued.token.id) is None
        assert unit.tokens.find_by_digest(hash_value(issued.value)) is None
    with pytest.raises(InvalidCredentials):
        harness.login(issued.value)
    with pytest.raises(NotFound):
        harness.tokens.delete(admin, issued.token.id)


def test_narrower_token_may_delete_a_broader_one(harness: Harness, admin: Principal) -> None:
    manager = harness.login(harness.create(admin, "manager", MANAGER).value)
    harness.tokens.delete(manager, admin.token.id)
    with harness.store.unit() as unit:
        assert unit.tokens.find(admin.token.id) is None


def test_token_without_permissions_deletes_itself(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "bare")
    harness.tokens.delete(harness.login(issued.value), "self")
    with pytest.raises(InvalidCredentials):
        harness.login(issued.value)


# -- usage -------------------------------------------------------------------------------


def test_last_used_is_written_by_the_flush(harness: Harness, admin: Principal) -> None:
    issued = harness.create(admin, "ci")
    harness.clock.advance(2)
    harness.login(issued.value, "192.0.2.1")
    harness.usage.flush()
    with harness.store.unit() as unit:
        stored = unit.tokens.find(issued.token.id)
    assert stored is not None
    assert stored.last_used_at == harness.clock.now()
    assert stored.last_used_ips == ("192.0.2.1",)
