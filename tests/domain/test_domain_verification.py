"""What ``/verify`` is asked for: permission names from repeated and comma-separated values."""

from __future__ import annotations

import pytest

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ, PermissionCatalog
from apitokens.domain.verification import required_permissions


def test_names_come_from_repeated_and_comma_separated_values_in_catalog_order() -> None:
    catalog = PermissionCatalog()
    raw = [f" {TOKEN_READ} ,AlertRead", f"{TOKEN_MODIFY}", " , ", f"AlertRead,{TOKEN_READ}"]
    assert required_permissions(catalog, raw) == catalog.normalize(
        ["AlertRead", TOKEN_MODIFY, TOKEN_READ]
    )
    assert set(required_permissions(catalog, raw)) == {"AlertRead", TOKEN_MODIFY, TOKEN_READ}


@pytest.mark.parametrize("raw", [[], [""], [" "], [",", " , ,"]])
def test_nothing_asked_for_is_no_permission(raw: list[str]) -> None:
    assert required_permissions(PermissionCatalog(), raw) == ()


def test_an_unknown_name_is_a_validation_error_naming_the_permission_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        required_permissions(PermissionCatalog(), ["AlertRead, AlertReed"])
    assert caught.value.field == "permission"
    assert caught.value.message.startswith("permission: unknown permission(s) AlertReed; ")
