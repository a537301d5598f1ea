"""Who may manage webhooks and read daily usage: one place, so it maps onto the domain's
authorization rules in one edit.

Registering or deleting a webhook needs OrganizationAPITokenModify; registering needs
OrganizationAPITokenRead too (the receiver is sent every token's metadata, which is what
Read shows). Listing webhooks and deliveries needs Read. A token may always read its own
usage; another token's needs Read.
"""

from __future__ import annotations

from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.rules import require
from apitokens.domain.tokens import Principal


def require_register_webhook(principal: Principal) -> None:
    require(principal, TOKEN_MODIFY)
    require(principal, TOKEN_READ)


def require_delete_webhook(principal: Principal) -> None:
    require(principal, TOKEN_MODIFY)


def require_read_webhooks(principal: Principal) -> None:
    require(principal, TOKEN_READ)


def require_read_usage(principal: Principal, own: bool) -> None:
    if not own:
        require(principal, TOKEN_READ)
