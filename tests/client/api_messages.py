"""What the real server answers, spelled out once for the client tests."""

from __future__ import annotations

from support.contract import UPSTREAM_PERMISSIONS

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
UNKNOWN_VALUE = "apitk_unknown_value"

ALL_PERMISSIONS = UPSTREAM_PERMISSIONS

UNAUTHORIZED = "invalid or missing API key"
LACKS_MODIFY = f"this API token lacks the {MODIFY} permission"
BAD_CURSOR = "cursor: is not a valid pagination cursor; pass the `next` value of the previous page"


WRONG_ADDRESS = "this API key may not be used from this address (see its allowedCIDRBlocks)"
"""The refusal names neither the caller's address nor the token's blocks."""


def cannot_grant(*names: str) -> str:
    return f"cannot grant permissions this API token does not hold: {', '.join(names)}"


NOT_FOUND = "no API token with that id"


def host_bits(block: str, network: str) -> str:
    return f"allowedCIDRBlocks: {block!r} has host bits set; did you mean {network!r}?"


def not_a_block(block: str) -> str:
    return (
        f"allowedCIDRBlocks: {block!r} is not a CIDR block "
        "(expected e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
    )


def unknown_permissions(*names: str) -> str:
    return (
        f"permissions: unknown permission(s) {', '.join(names)}; "
        f"accepted names are: {', '.join(ALL_PERMISSIONS)}"
    )
