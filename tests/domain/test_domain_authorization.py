"""domain.authorization: every rule, as a table of (caller, action, target, result) cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apitokens.domain.authorization import (
    IN_GRACE,
    NOT_CHANGEABLE,
    Action,
    authorize,
    missing,
    unknown_target,
    wider_limit,
)
from apitokens.domain.errors import NotFound, PermissionDenied
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import SYSTEM, Actor, Principal, Token

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
MUCH_LATER = NOW + timedelta(days=1)
MANAGER = (TOKEN_MODIFY, TOKEN_READ)
LACKS_READ = "this API token lacks the OrganizationAPITokenRead permission"
LACKS_MODIFY = "this API token lacks the OrganizationAPITokenModify permission"
WIDER_PERMISSIONS = "cannot change an API token whose permissions are wider than this API token's"
WIDER_BLOCKS = "cannot change an API token whose allowedCIDRBlocks are wider than this API token's"
LATER_EXPIRY = "cannot change an API token that expires later than this API token"


def token(
    id: str = "target",
    permissions: tuple[str, ...] = (),
    blocks: tuple[str, ...] = (),
    expires_at: datetime | None = None,
) -> Token:
    return Token(
        id=id,
        name=id,
        permissions=permissions,
        allowed_cidr_blocks=blocks,
        created_at=NOW,
        created_by=Actor("admin", SYSTEM),
        expires_at=expires_at,
    )


def caller(
    *permissions: str,
    blocks: tuple[str, ...] = (),
    expires_at: datetime | None = None,
    rotated_out: bool = False,
) -> Principal:
    return Principal(token("caller", permissions, blocks, expires_at), None, rotated_out)


def itself(principal: Principal) -> Token:
    return principal.token


# (caller, action, target, expected refusal message or None for allowed)
PERMISSION_CASES = [
    # reads
    (caller(TOKEN_READ), Action.READ, token(), None),
    (caller(), Action.READ, None, LACKS_READ),
    (caller(TOKEN_READ), Action.LIST, None, None),
    (caller(TOKEN_MODIFY), Action.LIST, None, LACKS_READ),
    (caller(TOKEN_READ), Action.READ_AUDIT, None, None),
    (caller(TOKEN_MODIFY), Action.READ_AUDIT, None, LACKS_READ),
    # writes need Modify
    (caller(TOKEN_MODIFY), Action.CREATE, None, None),
    (caller(TOKEN_READ), Action.CREATE, None, LACKS_MODIFY),
    (caller(*MANAGER), Action.UPDATE, token(), None),
    (caller(TOKEN_READ), Action.UPDATE, token(), LACKS_MODIFY),
    (caller(*MANAGER), Action.ROTATE, token(), None),
    (caller(TOKEN_READ), Action.ROTATE, token(), LACKS_MODIFY),
    (caller(TOKEN_MODIFY), Action.DELETE, token(), None),
    (caller(TOKEN_READ), Action.DELETE, token(), LACKS_MODIFY),
    # deleting another token needs only Modify, whatever that token holds
    (caller(TOKEN_MODIFY), Action.DELETE, token(permissions=("AlertRead",)), None),
]


@pytest.mark.parametrize(("principal", "action", "target", "refusal"), PERMISSION_CASES)
def test_permissions(
    principal: Principal, action: Action, target: Token | None, refusal: str | None
) -> None:
    if refusal is None:
        authorize(principal, action, target)
        return
    with pytest.raises(PermissionDenied) as caught:
        authorize(principal, action, target)
    assert caught.value.message == refusal


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (Action.READ, True),
        (Action.ROTATE, True),
        (Action.DELETE, True),
        (Action.UPDATE, False),  # updating itself needs Modify like any update
    ],
)
def test_self_may_read_rotate_and_delete_itself_without_permissions(
    action: Action, allowed: bool
) -> None:
    bare = caller()
    if allowed:
        authorize(bare, action, itself(bare))
    else:
        with pytest.raises(PermissionDenied, match=LACKS_MODIFY):
            authorize(bare, action, itself(bare))


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (Action.READ, True),
        (Action.LIST, True),
        (Action.READ_AUDIT, True),
        (Action.VERIFY, True),
        (Action.CREATE, False),
        (Action.UPDATE, False),
        (Action.ROTATE, False),
        (Action.DELETE, False),
    ],
)
def test_a_value_in_its_grace_period_may_only_read_and_verify(
    action: Action, allowed: bool
) -> None:
    """Even on itself, and even holding every permission: the old value is not the owner."""
    old = caller(*MANAGER, rotated_out=True)
    target = itself(old) if action is not Action.LIST else None
    if allowed:
        authorize(old, action, target)
    else:
        with pytest.raises(PermissionDenied) as caught:
            authorize(old, action, target)
        assert caught.value.message == IN_GRACE


# (caller, target) for changing another token: the target may be no wider than the caller
TARGET_CASES = [
    (caller(*MANAGER), token(permissions=(TOKEN_READ,)), None),
    (caller(*MANAGER), token(permissions=("AlertRead",)), WIDER_PERMISSIONS),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(blocks=("10.1.0.0/16",)), None),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(), WIDER_BLOCKS),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(blocks=("11.0.0.0/8",)), WIDER_BLOCKS),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(blocks=("10.0.0.0/7",)), WIDER_BLOCKS),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(blocks=("2001:db8::/32",)), WIDER_BLOCKS),
    (caller(*MANAGER, expires_at=LATER), token(expires_at=LATER), None),
    (caller(*MANAGER, expires_at=LATER), token(expires_at=MUCH_LATER), LATER_EXPIRY),
    (caller(*MANAGER, expires_at=LATER), token(), LATER_EXPIRY),
    (caller(*MANAGER), token(expires_at=LATER), None),
]


@pytest.mark.parametrize("action", [Action.UPDATE, Action.ROTATE])
@pytest.mark.parametrize(("principal", "target", "refusal"), TARGET_CASES)
def test_changing_another_token_needs_it_to_be_no_wider(
    action: Action, principal: Principal, target: Token, refusal: str | None
) -> None:
    if refusal is None:
        authorize(principal, action, target)
        return
    with pytest.raises(PermissionDenied) as caught:
        authorize(principal, action, target)
    assert caught.value.message == refusal
    assert "AlertRead" not in caught.value.message  # never lists the target's permissions
    assert "11.0.0.0" not in caught.value.message  # nor its networks


@pytest.mark.parametrize(("principal", "target", "refusal"), TARGET_CASES)
def test_without_read_a_refused_change_looks_like_an_unknown_id(
    principal: Principal, target: Token, refusal: str | None
) -> None:
    modify_only = Principal(replace(principal.token, permissions=(TOKEN_MODIFY,)), None)
    if refusal is None and not missing(modify_only, target.permissions):
        authorize(modify_only, Action.ROTATE, target)
        return
    with pytest.raises(PermissionDenied) as caught:
        authorize(modify_only, Action.ROTATE, target)
    assert caught.value.message == NOT_CHANGEABLE
    unknown = unknown_target(modify_only, Action.ROTATE)
    assert isinstance(unknown, PermissionDenied)
    assert unknown.message == NOT_CHANGEABLE


@pytest.mark.parametrize(
    ("permissions", "action", "answer"),
    [
        (MANAGER, Action.ROTATE, NotFound),
        (MANAGER, Action.UPDATE, NotFound),
        (MANAGER, Action.DELETE, NotFound),
        ((TOKEN_MODIFY,), Action.ROTATE, PermissionDenied),
        ((TOKEN_MODIFY,), Action.UPDATE, PermissionDenied),
        ((TOKEN_MODIFY,), Action.DELETE, NotFound),  # a delete refuses nothing: 404 is fine
    ],
)
def test_the_answer_for_an_unknown_id(
    permissions: tuple[str, ...], action: Action, answer: type[Exception]
) -> None:
    assert type(unknown_target(caller(*permissions), action)) is answer


# (caller, resulting token, refusal) for create and update: no wider on any axis
RESULT_CASES = [
    (caller(*MANAGER), token(permissions=(TOKEN_READ,)), None),
    (
        caller(*MANAGER),
        token(permissions=("AlertRead", TOKEN_READ, "UserRead")),
        "cannot grant permissions this API token does not hold: AlertRead, UserRead",
    ),
    (caller(*MANAGER, blocks=("10.0.0.0/8",)), token(blocks=("10.2.0.0/16", "10.9.9.9/32")), None),
    (
        caller(*MANAGER, blocks=("10.0.0.0/8",)),
        token(),
        "allowedCIDRBlocks: every block must lie inside this API token's own allowedCIDRBlocks "
        "(no blocks means any address does not)",
    ),
    (
        caller(*MANAGER, blocks=("10.0.0.0/8", "192.0.2.0/24")),
        token(blocks=("10.0.0.0/16", "0.0.0.0/0", "192.0.2.0/23")),
        "allowedCIDRBlocks: every block must lie inside this API token's own allowedCIDRBlocks "
        "(0.0.0.0/0, 192.0.2.0/23 does not)",
    ),
    (caller(*MANAGER, expires_at=LATER), token(expires_at=LATER), None),
    (caller(*MANAGER, expires_at=LATER), token(expires_at=NOW), None),
    (
        caller(*MANAGER, expires_at=LATER),
        token(expires_at=MUCH_LATER),
        "expiresAt: must not be later than this API token's own expiry, 2030-01-01T13:00:00Z",
    ),
    (
        caller(*MANAGER, expires_at=LATER),
        token(),
        "expiresAt: must not be later than this API token's own expiry, 2030-01-01T13:00:00Z",
    ),
    (caller(*MANAGER), token(blocks=("10.0.0.0/8",), expires_at=LATER), None),
]


@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE])
@pytest.mark.parametrize(("principal", "result", "refusal"), RESULT_CASES)
def test_a_new_or_updated_token_is_no_wider_than_its_creator(
    action: Action, principal: Principal, result: Token, refusal: str | None
) -> None:
    own = principal.token
    narrow = token(blocks=own.allowed_cidr_blocks, expires_at=own.expires_at)
    target = narrow if action is Action.UPDATE else None
    if refusal is None:
        authorize(principal, action, target, result=result)
        return
    with pytest.raises(PermissionDenied) as caught:
        authorize(principal, action, target, result=result)
    assert caught.value.message == refusal


def test_a_token_cannot_lift_its_own_limits() -> None:
    fenced = caller(*MANAGER, blocks=("127.0.0.0/8",), expires_at=LATER)
    lifted = replace(fenced.token, allowed_cidr_blocks=())
    with pytest.raises(PermissionDenied, match="allowedCIDRBlocks"):
        authorize(fenced, Action.UPDATE, fenced.token, result=lifted)
    renewed = replace(fenced.token, expires_at=MUCH_LATER)
    with pytest.raises(PermissionDenied, match="expiresAt"):
        authorize(fenced, Action.UPDATE, fenced.token, result=renewed)
    narrowed = replace(fenced.token, allowed_cidr_blocks=("127.0.0.1/32",), expires_at=NOW)
    authorize(fenced, Action.UPDATE, fenced.token, result=narrowed)


def test_the_system_is_unconstrained() -> None:
    everything = token(permissions=("AlertRead",), blocks=(), expires_at=None)
    for action in Action:
        authorize(None, action, everything, result=everything, required=("AlertRead",))


@pytest.mark.parametrize(
    ("held", "required", "refusal"),
    [
        (("AlertRead",), (), None),
        (("AlertRead",), ("AlertRead",), None),
        (
            ("AlertRead",),
            ("AlertRead", "AlertModify", "UserRead"),
            "this API token lacks the permission(s) required here: AlertModify, UserRead",
        ),
    ],
)
def test_verify_needs_every_required_permission(
    held: tuple[str, ...], required: tuple[str, ...], refusal: str | None
) -> None:
    if refusal is None:
        authorize(caller(*held), Action.VERIFY, required=required)
        return
    with pytest.raises(PermissionDenied) as caught:
        authorize(caller(*held), Action.VERIFY, required=required)
    assert caught.value.message == refusal


def test_wider_limit_names_the_first_wider_axis() -> None:
    narrow = caller(TOKEN_READ, blocks=("10.0.0.0/8",), expires_at=LATER)
    assert wider_limit(narrow, token(permissions=(TOKEN_READ,), blocks=("10.0.0.0/9",))) == (
        "expiresAt"
    )
    assert wider_limit(narrow, token(permissions=(TOKEN_MODIFY,))) == "permissions"
    assert wider_limit(narrow, token(expires_at=LATER)) == "allowedCIDRBlocks"
    assert wider_limit(narrow, token(blocks=("10.0.0.0/8",), expires_at=NOW)) is None
