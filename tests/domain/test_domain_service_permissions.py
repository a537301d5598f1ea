"""servicePermissions (the operator's extra names) kept apart from upstream permissions:
exact refusals, catalog order, and what a spec holds on create and update."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.permissions import (
    TOKEN_MODIFY,
    TOKEN_READ,
    UPSTREAM_PERMISSIONS,
    PermissionCatalog,
)
from apitokens.domain.tokens import SYSTEM, Actor, Token, TokenSpec
from apitokens.domain.validation import build_spec

CATALOG = PermissionCatalog(("zeta.write", "alpha.read", "mid:run"))


def refusal(call: object, *args: object) -> tuple[str, str]:
    assert callable(call)
    with pytest.raises(ValidationFailed) as caught:
        call(*args)
    return caught.value.field, caught.value.message


def test_unknown_upstream_names_are_refused_with_the_accepted_ones() -> None:
    assert refusal(CATALOG.normalize_upstream, ["Bogus", "Also", TOKEN_READ]) == (
        "permissions",
        "permissions: unknown permission(s) Also, Bogus; accepted names are: "
        + ", ".join(UPSTREAM_PERMISSIONS),
    )


def test_extra_names_in_permissions_are_refused_pointing_at_service_permissions() -> None:
    assert refusal(CATALOG.normalize_upstream, ["zeta.write", "alpha.read"]) == (
        "permissions",
        "permissions: alpha.read, zeta.write: not an upstream permission; send the "
        "permissions of other services in servicePermissions",
    )


def test_upstream_names_in_service_permissions_are_refused() -> None:
    assert refusal(CATALOG.normalize_service, [TOKEN_READ, TOKEN_MODIFY, "zeta.write"]) == (
        "servicePermissions",
        f"servicePermissions: {TOKEN_MODIFY}, {TOKEN_READ}: an upstream permission; "
        "send it in permissions",
    )


def test_unknown_service_names_are_refused() -> None:
    assert refusal(CATALOG.normalize_service, ["nope.b", "nope.a"]) == (
        "servicePermissions",
        "servicePermissions: unknown permission(s) nope.a, nope.b; accepted names are: "
        "zeta.write, alpha.read, mid:run",
    )
    assert refusal(PermissionCatalog().normalize_service, ["x.y"]) == (
        "servicePermissions",
        "servicePermissions: unknown permission(s) x.y; this server defines none "
        "(APITOKENS_EXTRA_PERMISSIONS)",
    )


def test_names_come_back_in_catalog_order_without_duplicates() -> None:
    assert CATALOG.normalize_service(["mid:run", "alpha.read", "zeta.write", "mid:run"]) == (
        "zeta.write",
        "alpha.read",
        "mid:run",
    )
    assert CATALOG.normalize_upstream([TOKEN_READ, TOKEN_MODIFY, TOKEN_READ]) == (
        TOKEN_MODIFY,
        TOKEN_READ,
    )


def test_a_spec_holds_its_service_permissions_or_keeps_the_current_ones() -> None:
    made = build_spec(CATALOG, "svc", [TOKEN_READ], None, service_permissions=["mid:run"])
    assert made.service_permissions == ("mid:run",)
    assert made.held() == (TOKEN_READ, "mid:run")
    kept = build_spec(CATALOG, "svc", [TOKEN_MODIFY], None)
    assert kept.service_permissions is None
    assert kept.held() == (TOKEN_MODIFY,)
    current = Token(
        "00000000-0000-4000-8000-000000000001",
        "svc",
        (TOKEN_READ, "zeta.write", "mid:run"),
        (),
        datetime(2030, 1, 1, tzinfo=UTC),
        Actor("cli", SYSTEM),
    )
    assert kept.held(current) == (TOKEN_MODIFY, "zeta.write", "mid:run")
    assert made.held(current) == (TOKEN_READ, "mid:run")
    cleared = TokenSpec("svc", (TOKEN_READ,), None, None, service_permissions=())
    assert cleared.held(current) == (TOKEN_READ,)
    with pytest.raises(ValidationFailed):
        build_spec(CATALOG, "svc", [], None, service_permissions=["nope"])
