"""Validation: names, specs, lifetimes, grace periods (authorization: test_domain_authorization)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.permissions import TOKEN_READ, PermissionCatalog
from apitokens.domain.tokens import SYSTEM, Actor, Principal, Token
from apitokens.domain.validation import (
    MAX_NAME_LENGTH,
    Lifetimes,
    build_spec,
    grace_period,
    validate_name,
)

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _principal(*permissions: str) -> Principal:
    token = Token(
        id="caller",
        name="caller",
        permissions=tuple(permissions),
        allowed_cidr_blocks=(),
        created_at=NOW,
        created_by=Actor("admin", SYSTEM),
    )
    return Principal(token, None)


# -- names -------------------------------------------------------------------------------


def test_name_is_trimmed() -> None:
    assert validate_name("  ci deploy \t") == "ci deploy"


@pytest.mark.parametrize("name", ["", " ", "\t\n ", "\u00a0"])
def test_empty_name_after_trimming_is_refused(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_name(name)
    assert caught.value.message == "name: must not be empty"


def test_name_of_maximum_length_is_accepted() -> None:
    assert validate_name("n" * MAX_NAME_LENGTH) == "n" * 256


def test_name_one_over_the_maximum_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_name("n" * 257)
    assert caught.value.message == "name: must be at most 256 characters"


def test_length_counts_after_trimming() -> None:
    assert validate_name(" " + "n" * 256 + " ") == "n" * 256


def test_name_with_control_characters_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="name: must not contain control characters"):
        validate_name("a\x00b")


def test_unicode_name_is_accepted() -> None:
    assert validate_name("déploiement ✓") == "déploiement ✓"


# -- build_spec --------------------------------------------------------------------------


def test_build_spec_normalizes_every_field() -> None:
    spec = build_spec(
        PermissionCatalog(),
        " ci ",
        [TOKEN_READ, "AlertRead", TOKEN_READ],
        ["10.0.0.1", "10.0.0.1/32"],
    )
    assert spec.name == "ci"
    assert spec.permissions == ("AlertRead", TOKEN_READ)
    assert spec.allowed_cidr_blocks == ("10.0.0.1/32",)
    assert spec.expires_at is None
    assert spec.expires_at_given is False


def test_build_spec_keeps_omitted_blocks_as_none() -> None:
    assert build_spec(PermissionCatalog(), "ci", [], None).allowed_cidr_blocks is None


def test_build_spec_keeps_explicit_empty_blocks() -> None:
    assert build_spec(PermissionCatalog(), "ci", [], []).allowed_cidr_blocks == ()


# -- lifetimes ---------------------------------------------------------------------------


def test_no_policy_and_no_request_means_never_expires() -> None:
    assert Lifetimes().resolve(None, False, NOW) is None


def test_explicit_null_without_maximum_means_never_expires() -> None:
    assert Lifetimes().resolve(None, True, NOW) is None


def test_default_lifetime_applies_when_not_given() -> None:
    assert Lifetimes(default=DAY).resolve(None, False, NOW) == NOW + DAY


def test_maximum_lifetime_applies_when_not_given_and_no_default() -> None:
    assert Lifetimes(maximum=7 * DAY).resolve(None, False, NOW) == NOW + 7 * DAY


def test_explicit_null_is_refused_under_a_maximum() -> None:
    with pytest.raises(ValidationFailed, match="expiresAt: tokens must expire within 7 days"):
        Lifetimes(maximum=7 * DAY).resolve(None, True, NOW)


def test_requested_expiry_is_kept_at_millisecond_precision() -> None:
    requested = NOW + timedelta(hours=1, microseconds=123_456)
    assert Lifetimes().resolve(requested, True, NOW) == NOW + timedelta(hours=1, milliseconds=123)


def test_requested_expiry_in_another_zone_is_converted_to_utc() -> None:
    local = datetime(2030, 1, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    resolved = Lifetimes().check(local, NOW)
    assert resolved == datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
    assert resolved is not None and resolved.utcoffset() == timedelta(0)


@pytest.mark.parametrize("offset", [timedelta(0), -timedelta(seconds=1)])
def test_expiry_not_in_the_future_is_refused(offset: timedelta) -> None:
    with pytest.raises(ValidationFailed, match="expiresAt: must be in the future"):
        Lifetimes().check(NOW + offset, NOW)


def test_expiry_that_overflows_in_utc_is_refused() -> None:
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValidationFailed, match="expiresAt: is out of range"):
        Lifetimes().check(year_one, NOW)


def test_naive_expiry_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="expiresAt: must carry a time zone"):
        Lifetimes().check(datetime(2031, 1, 1), NOW)


def test_expiry_beyond_the_maximum_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="expiresAt: must be within 7 days"):
        Lifetimes(maximum=7 * DAY).check(NOW + 7 * DAY + timedelta(seconds=1), NOW)


def test_expiry_at_the_maximum_is_accepted() -> None:
    assert Lifetimes(maximum=7 * DAY).check(NOW + 7 * DAY, NOW) == NOW + 7 * DAY


def test_maximum_in_seconds_is_described_in_seconds() -> None:
    with pytest.raises(ValidationFailed, match="within 90 seconds"):
        Lifetimes(maximum=timedelta(seconds=90)).check(NOW + DAY, NOW)


def test_default_longer_than_maximum_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="exceeds the maximum"):
        Lifetimes(default=8 * DAY, maximum=7 * DAY)


# -- grace periods -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "span"),
    [(None, timedelta(0)), (0, timedelta(0)), (60, timedelta(minutes=1)), (604800, 7 * DAY)],
)
def test_grace_period_within_bounds(seconds: int | None, span: timedelta) -> None:
    assert grace_period(seconds) == span


@pytest.mark.parametrize("seconds", [-1, 604801, 10**9])
def test_grace_period_out_of_bounds_is_refused(seconds: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        grace_period(seconds)
    assert caught.value.message == "gracePeriodSeconds: must be between 0 and 604800"
