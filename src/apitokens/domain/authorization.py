"""Authorization: may this principal do this action to this target? Decided here only.

The rules, in the order they are applied:

1. **A value in its rotation grace period is not the owner.** It may read and be verified,
   nothing else: otherwise whoever holds a leaked old value could rotate again and take
   the token over from its legitimate holder.
2. **Permissions.** Reads (a token, the list, the audit trail) need
   ``OrganizationAPITokenRead``; create, update, rotate and delete need
   ``OrganizationAPITokenModify``; ``/verify`` needs what the proxy requires.
   **``self``** may always read, rotate and delete itself.
3. **No escalation, on any axis.** A token that a token creates or updates may be no wider
   than its creator: its permissions are a subset of the caller's; when the caller has
   ``allowedCIDRBlocks``, every block of the new token lies inside one of them; when the
   caller expires, the new token expires no later. The same holds for a token changing
   itself (it cannot lift its own limits) and for *changing another* token (update,
   rotate): the target must be no wider than the caller, or a narrow token could rotate a
   wide one and receive its value. Deleting another token needs only Modify.
4. **No probing without Read.** A caller that cannot read tokens gets the same answer for a
   change it may not make and for an id that does not exist, and no refusal ever lists
   another token's permissions or networks.

A caller of None is the system (``bootstrap`` on the command line): unconstrained.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from apitokens.domain.errors import DomainError, NotFound, PermissionDenied
from apitokens.domain.network import networks_of, within
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import Principal, Token


class Action(StrEnum):
    READ = "read"
    LIST = "list"
    READ_AUDIT = "read_audit"
    CREATE = "create"
    UPDATE = "update"
    ROTATE = "rotate"
    DELETE = "delete"
    VERIFY = "verify"


READ_ONLY = frozenset({Action.READ, Action.LIST, Action.READ_AUDIT, Action.VERIFY})
"""What a value in its rotation grace period may still do."""

SELF_ALLOWED = frozenset({Action.READ, Action.ROTATE, Action.DELETE})
"""What a token may do to itself whatever its permissions."""

NEEDED = {
    Action.READ: TOKEN_READ,
    Action.LIST: TOKEN_READ,
    Action.READ_AUDIT: TOKEN_READ,
    Action.CREATE: TOKEN_MODIFY,
    Action.UPDATE: TOKEN_MODIFY,
    Action.ROTATE: TOKEN_MODIFY,
    Action.DELETE: TOKEN_MODIFY,
}

IN_GRACE = (
    "this API key was rotated out and is in its grace period: it may read and be verified, "
    "nothing else; use the token's new value"
)
NOT_CHANGEABLE = (
    "cannot change that API token: it does not exist, or it is wider (permissions, "
    "allowedCIDRBlocks or expiresAt) than this API token; a token without "
    f"{TOKEN_READ} is not told which"
)


def authorize(
    principal: Principal | None,
    action: Action,
    target: Token | None = None,
    *,
    result: Token | None = None,
    required: Iterable[str] = (),
) -> None:
    """Raise PermissionDenied unless ``principal`` may do ``action``.

    ``target`` is the existing token acted on (read, update, rotate, delete); ``result`` is
    the token as the action would leave it (create, update); ``required`` are the
    permissions a ``/verify`` request needs.
    """
    if principal is None:
        return
    if principal.rotated_out and action not in READ_ONLY:
        raise PermissionDenied(IN_GRACE)
    own = target is not None and target.id == principal.token.id
    if action is Action.VERIFY:
        _require_all(principal, required)
    elif not (own and action in SELF_ALLOWED):
        _require(principal, NEEDED[action])
    if target is not None and not own and action in (Action.UPDATE, Action.ROTATE):
        _forbid_wider_target(principal, target)
    if result is not None:
        _forbid_wider_result(principal, result)


def unknown_target(principal: Principal, action: Action) -> DomainError:
    """The answer for a target id that does not exist (rule 4: no probing without Read)."""
    if action in (Action.UPDATE, Action.ROTATE) and not principal.holds(TOKEN_READ):
        return PermissionDenied(NOT_CHANGEABLE)
    return NotFound("no API token with that id")


def missing(principal: Principal, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that ``principal`` does not hold, in order."""
    return [name for name in names if not principal.holds(name)]


def wider_limit(principal: Principal, token: Token) -> str | None:
    """The first axis on which ``token`` is wider than the caller, or None."""
    if missing(principal, token.permissions):
        return "permissions"
    own_blocks = principal.token.allowed_cidr_blocks
    if own_blocks and not within(networks_of(token.allowed_cidr_blocks), networks_of(own_blocks)):
        return "allowedCIDRBlocks"
    if _expires_later(token.expires_at, principal.token.expires_at):
        return "expiresAt"
    return None


def _require(principal: Principal, permission: str) -> None:
    if not principal.holds(permission):
        raise PermissionDenied(f"this API token lacks the {permission} permission")


def _require_all(principal: Principal, required: Iterable[str]) -> None:
    lacking = missing(principal, required)
    if lacking:
        raise PermissionDenied(
            f"this API token lacks the permission(s) required here: {', '.join(lacking)}"
        )


def _forbid_wider_target(principal: Principal, target: Token) -> None:
    axis = wider_limit(principal, target)
    if axis is None:
        return
    if not principal.holds(TOKEN_READ):
        raise PermissionDenied(NOT_CHANGEABLE)
    raise PermissionDenied(
        f"cannot change an API token whose {axis} are wider than this API token's"
        if axis != "expiresAt"
        else "cannot change an API token that expires later than this API token"
    )


def _forbid_wider_result(principal: Principal, result: Token) -> None:
    lacking = missing(principal, result.permissions)
    if lacking:
        raise PermissionDenied(
            "cannot grant permissions this API token does not hold: " + ", ".join(lacking)
        )
    own_blocks = principal.token.allowed_cidr_blocks
    if own_blocks:
        outside = [
            block
            for block in result.allowed_cidr_blocks
            if not within(networks_of((block,)), networks_of(own_blocks))
        ]
        if outside or not result.allowed_cidr_blocks:
            raise PermissionDenied(
                "allowedCIDRBlocks: every block must lie inside this API token's own "
                "allowedCIDRBlocks ("
                + (", ".join(outside) if outside else "no blocks means any address")
                + " does not)"
            )
    own_expiry = principal.token.expires_at
    if _expires_later(result.expires_at, own_expiry):
        assert own_expiry is not None
        raise PermissionDenied(
            "expiresAt: must not be later than this API token's own expiry, "
            + own_expiry.isoformat().replace("+00:00", "Z")
        )


def _expires_later(candidate: datetime | None, limit: datetime | None) -> bool:
    if limit is None:
        return False
    return candidate is None or candidate > limit
