"""Validation of what callers send: names, token specs, lifetimes, grace periods.

Authorization lives in ``domain.authorization``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from apitokens.domain.clock import to_millis
from apitokens.domain.errors import ValidationFailed
from apitokens.domain.network import normalize_blocks
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.text import forbidden_character
from apitokens.domain.tokens import TokenSpec

MAX_NAME_LENGTH = 256
MAX_GRACE_PERIOD = timedelta(days=7)


def validate_name(name: str) -> str:
    """The name, trimmed; ValidationFailed (naming the rule) if it cannot be stored or shown.

    After trimming white space: 1 to 256 characters, none of which could drive a terminal
    or reorder text where names are shown (``tokens list``, the console): no C0 or C1
    control character, no bidirectional control, no line or paragraph separator, and no
    lone surrogate (which cannot even be stored).
    """
    cleaned = name.strip()
    if not cleaned:
        raise ValidationFailed("name", "must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationFailed("name", f"must be at most {MAX_NAME_LENGTH} characters")
    bad = forbidden_character(cleaned)
    if bad is not None:
        raise ValidationFailed(
            "name",
            "must not contain control characters, bidirectional controls or lone "
            f"surrogates ({bad})",
        )
    return cleaned


class Lifetimes:
    """The server's expiry policy: an optional default and an optional maximum lifetime."""

    def __init__(self, default: timedelta | None = None, maximum: timedelta | None = None) -> None:
        if default is not None and maximum is not None and default > maximum:
            raise ValueError("the default lifetime exceeds the maximum lifetime")
        self.default = default
        self.maximum = maximum

    def resolve(self, requested: datetime | None, given: bool, now: datetime) -> datetime | None:
        """The ``expiresAt`` to store for a new token.

        Raises ValidationFailed for a time in the past or beyond the maximum lifetime.
        """
        if not given:
            return to_millis(now + self.default) if self.default else self._ceiling(now)
        return self.check(requested, now)

    def check(self, requested: datetime | None, now: datetime) -> datetime | None:
        if requested is None:
            if self.maximum is not None:
                raise ValidationFailed(
                    "expiresAt",
                    f"tokens must expire within {_days(self.maximum)} on this server",
                )
            return None
        if requested.tzinfo is None:
            raise ValidationFailed("expiresAt", "must carry a time zone, e.g. 2030-01-01T00:00:00Z")
        try:
            requested = to_millis(requested)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise ValidationFailed("expiresAt", "is out of range") from None
        if requested <= now:
            raise ValidationFailed("expiresAt", "must be in the future")
        ceiling = self._ceiling(now)
        if ceiling is not None and requested > ceiling:
            raise ValidationFailed(
                "expiresAt", f"must be within {_days(self.maximum)} from now on this server"
            )
        return requested

    def _ceiling(self, now: datetime) -> datetime | None:
        return to_millis(now + self.maximum) if self.maximum else None


def _days(span: timedelta | None) -> str:
    seconds = int(span.total_seconds()) if span else 0
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} seconds"


def build_spec(
    catalog: PermissionCatalog,
    name: str,
    permissions: Iterable[str],
    blocks: Iterable[str] | None,
    expires_at: datetime | None = None,
    expires_at_given: bool = False,
    service_permissions: Iterable[str] | None = None,
) -> TokenSpec:
    """Validate and normalize create/update input (duplicates collapsed).

    ``permissions`` takes upstream names only, ``service_permissions`` the operator's
    extra names only (None: none on create, the current ones on update)."""
    return TokenSpec(
        name=validate_name(name),
        permissions=catalog.normalize_upstream(permissions),
        allowed_cidr_blocks=normalize_blocks(blocks) if blocks is not None else None,
        expires_at=expires_at,
        expires_at_given=expires_at_given,
        service_permissions=(
            catalog.normalize_service(service_permissions)
            if service_permissions is not None
            else None
        ),
    )


def grace_period(seconds: int | None) -> timedelta:
    if seconds is None:
        return timedelta(0)
    if not 0 <= seconds <= MAX_GRACE_PERIOD.total_seconds():  # timedelta() overflows first
        raise ValidationFailed(
            "gracePeriodSeconds", f"must be between 0 and {int(MAX_GRACE_PERIOD.total_seconds())}"
        )
    return timedelta(seconds=seconds)
