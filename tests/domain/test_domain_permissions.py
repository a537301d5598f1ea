"""The permission catalog: the 39 upstream names, extras, normalisation."""

from __future__ import annotations

import pytest

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.permissions import (
    TOKEN_MODIFY,
    TOKEN_READ,
    UPSTREAM_PERMISSIONS,
    PermissionCatalog,
    service_of,
    upstream_of,
)
from support.contract import UPSTREAM_PERMISSIONS as CONTRACT_PERMISSIONS


@pytest.fixture
def catalog() -> PermissionCatalog:
    return PermissionCatalog()


def test_upstream_catalog_has_the_39_names() -> None:
    assert len(UPSTREAM_PERMISSIONS) == 39
    assert len(set(UPSTREAM_PERMISSIONS)) == 39
    assert {TOKEN_READ, TOKEN_MODIFY} <= set(UPSTREAM_PERMISSIONS)
    assert TOKEN_READ == "OrganizationAPITokenRead"
    assert TOKEN_MODIFY == "OrganizationAPITokenModify"


def test_upstream_catalog_is_spelled_as_the_contract_spells_it() -> None:
    assert sorted(UPSTREAM_PERMISSIONS) == CONTRACT_PERMISSIONS


def test_normalize_returns_catalog_order(catalog: PermissionCatalog) -> None:
    requested = ["ViewScheduledPrompts", TOKEN_READ, "AIRunAsModify"]
    assert catalog.normalize(requested) == ("AIRunAsModify", TOKEN_READ, "ViewScheduledPrompts")


def test_normalize_collapses_duplicates(catalog: PermissionCatalog) -> None:
    assert catalog.normalize([TOKEN_READ, TOKEN_READ, "AlertRead", TOKEN_READ]) == (
        "AlertRead",
        TOKEN_READ,
    )


def test_normalize_of_nothing_is_empty(catalog: PermissionCatalog) -> None:
    assert catalog.normalize([]) == ()


def test_normalize_refuses_unknown_names_listing_the_accepted_ones(
    catalog: PermissionCatalog,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        catalog.normalize([TOKEN_READ, "Nope", "AlsoNope"])
    assert caught.value.field == "permissions"
    assert caught.value.message == (
        "permissions: unknown permission(s) AlsoNope, Nope; accepted names are: "
        + ", ".join(UPSTREAM_PERMISSIONS)
    )


def test_normalize_is_case_sensitive(catalog: PermissionCatalog) -> None:
    with pytest.raises(ValidationFailed, match="organizationapitokenread"):
        catalog.normalize(["organizationapitokenread"])


def test_extra_names_join_the_catalog_after_upstream() -> None:
    catalog = PermissionCatalog(["billing:read", "AlertRead", "billing:read"])
    assert catalog.names == (*UPSTREAM_PERMISSIONS, "billing:read")
    assert "billing:read" in catalog
    assert catalog.normalize(["billing:read", "AlertRead"]) == ("AlertRead", "billing:read")


@pytest.mark.parametrize("name", ["", "1abc", "with space", "x" * 129])
def test_invalid_extra_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid permission name"):
        PermissionCatalog([name])


def test_membership(catalog: PermissionCatalog) -> None:
    assert TOKEN_MODIFY in catalog
    assert "Nope" not in catalog


# -- the two fields of the API: permissions (upstream) and servicePermissions (extra) -----


def test_each_field_takes_only_its_own_names() -> None:
    catalog = PermissionCatalog(["reports:read", "reports:write"])
    assert catalog.extra == ("reports:read", "reports:write")
    assert catalog.normalize_upstream(["AlertRead", TOKEN_READ, "AlertRead"]) == (
        "AlertRead",
        TOKEN_READ,
    )
    assert catalog.normalize_service(["reports:write", "reports:read"]) == (
        "reports:read",
        "reports:write",
    )
    with pytest.raises(ValidationFailed) as misplaced:
        catalog.normalize_upstream([TOKEN_READ, "reports:write", "reports:read"])
    assert (misplaced.value.field, misplaced.value.message) == (
        "permissions",
        "permissions: reports:read, reports:write: not an upstream permission; send the "
        "permissions of other services in servicePermissions",
    )
    with pytest.raises(ValidationFailed) as upstream:
        catalog.normalize_service(["reports:read", TOKEN_READ])
    assert (upstream.value.field, upstream.value.message) == (
        "servicePermissions",
        f"servicePermissions: {TOKEN_READ}: an upstream permission; send it in permissions",
    )
    with pytest.raises(ValidationFailed) as unknown:
        catalog.normalize_service(["reports:delete"])
    assert unknown.value.message == (
        "servicePermissions: unknown permission(s) reports:delete; accepted names are: "
        "reports:read, reports:write"
    )


def test_without_extra_names_service_permissions_accepts_nothing() -> None:
    catalog = PermissionCatalog()
    assert catalog.extra == ()
    assert catalog.normalize_service([]) == ()
    with pytest.raises(ValidationFailed) as unknown:
        catalog.normalize_service(["reports:read"])
    assert unknown.value.message == (
        "servicePermissions: unknown permission(s) reports:read; this server defines none "
        "(APITOKENS_EXTRA_PERMISSIONS)"
    )


def test_held_names_split_into_the_two_fields() -> None:
    held = ("AlertRead", TOKEN_READ, "reports:read", "retired:name")
    assert upstream_of(held) == ["AlertRead", TOKEN_READ]
    assert service_of(held) == ["reports:read", "retired:name"]
