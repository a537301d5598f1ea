"""Boundaries and exact words of the domain: control characters in names, the IPv4-mapped
IPv6 range, empty allowlists, lifetimes, the clock's precision, the error messages, and a
token seen with pending usage keeping every one of its fields."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from apitokens.domain.authorization import NOT_CHANGEABLE, Action, unknown_target
from apitokens.domain.clock import SystemClock, to_millis
from apitokens.domain.errors import (
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
    TokenExpired,
    ValidationFailed,
)
from apitokens.domain.network import (
    address_text,
    networks_of,
    normalize_blocks,
    parse_block,
    within,
)
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ, PermissionCatalog
from apitokens.domain.tokens import SYSTEM, Actor, Principal, Token
from apitokens.domain.validation import Lifetimes, validate_name

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def token(**fields: object) -> Token:
    base = Token(
        id="00000000-0000-4000-8000-000000000001",
        name="t",
        permissions=(TOKEN_READ,),
        allowed_cidr_blocks=(),
        created_at=T0,
        created_by=Actor("cli", SYSTEM),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "char", ["\x00", "\x1f", "\x7f", "\n", "\t", "\x80", "\x9f", "\u202e", "\u2028", "\ud800"]
)
def test_control_characters_in_a_name_are_refused(char: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_name(f"a{char}b")
    assert caught.value.message == (
        "name: must not contain control characters, bidirectional controls or lone "
        f"surrogates (U+{ord(char):04X} at position 1)"
    )


@pytest.mark.parametrize("char", [" ", "~", "\xa0", "é", "\u2027", "\u202f"])
def test_the_printable_neighbours_of_control_characters_are_allowed(char: str) -> None:
    assert validate_name(f"a{char}b") == f"a{char}b"


def test_a_name_is_at_most_256_characters_after_trimming() -> None:
    assert validate_name("  " + "n" * 256 + "  ") == "n" * 256
    with pytest.raises(ValidationFailed) as caught:
        validate_name("n" * 257)
    assert caught.value.message == "name: must be at most 256 characters"
    with pytest.raises(ValidationFailed) as caught:
        validate_name("   ")
    assert caught.value.message == "name: must not be empty"


# -- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::ffff:0:0/96", "0.0.0.0/0"),  # the whole mapped range is all of IPv4
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:10.0.0.1/128", "10.0.0.1/32"),
        ("::fffe:0:0/95", "::fffe:0:0/95"),  # wider than the mapped range: stays IPv6
        ("::ffff:128.0.0.0/97", "128.0.0.0/1"),
        ("10.0.0.1", "10.0.0.1/32"),
        ("2001:db8::1", "2001:db8::1/128"),
    ],
)
def test_blocks_of_ipv4_mapped_addresses_become_ipv4(text: str, expected: str) -> None:
    assert parse_block(text) == ipaddress.ip_network(expected)


def test_a_block_with_host_bits_suggests_the_network() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_block("10.0.0.1/8")
    assert caught.value.message == (
        "allowedCIDRBlocks: '10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?"
    )


def test_a_block_that_is_no_block_says_what_one_looks_like() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_block("10.0.0.0/33", field="blocks")
    assert caught.value.message == (
        "blocks: '10.0.0.0/33' is not a CIDR block (expected e.g. 10.0.0.0/8, 192.0.2.7 "
        "or 2001:db8::/32)"
    )
    assert caught.value.field == "blocks"


def test_everything_is_within_an_empty_allowlist() -> None:
    assert within(networks_of(("10.0.0.0/8",)), ()) is True
    assert within((), ()) is True
    assert within((), networks_of(("10.0.0.0/8",))) is False
    assert within(networks_of(("10.1.0.0/16",)), networks_of(("10.0.0.0/8",))) is True
    assert within(networks_of(("::ffff:0:0/96",)), networks_of(("0.0.0.0/0",))) is False


# -- lifetimes and the clock ---------------------------------------------------------------


def test_a_zero_maximum_lifetime_is_reported_in_days() -> None:
    lifetimes = Lifetimes(maximum=timedelta(0))
    with pytest.raises(ValidationFailed) as caught:
        lifetimes.check(None, T0)
    assert caught.value.message == "expiresAt: tokens must expire within 0 days on this server"


def test_a_maximum_lifetime_that_is_not_whole_days_is_reported_in_seconds() -> None:
    lifetimes = Lifetimes(maximum=timedelta(days=1, seconds=1))
    with pytest.raises(ValidationFailed) as caught:
        lifetimes.check(T0 + timedelta(days=2), T0)
    assert caught.value.message == "expiresAt: must be within 86401 seconds from now on this server"


def test_a_time_without_a_zone_is_refused_with_an_example() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Lifetimes().check(datetime(2031, 1, 1), T0)
    assert caught.value.message == "expiresAt: must carry a time zone, e.g. 2030-01-01T00:00:00Z"


def test_times_are_kept_in_utc_to_the_millisecond() -> None:
    moment = datetime(2030, 1, 1, 13, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert to_millis(moment) == datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert to_millis(moment).tzinfo is UTC
    assert to_millis(datetime(2030, 1, 1, 0, 0, 0, 999, tzinfo=UTC)).microsecond == 0
    assert to_millis(datetime(2030, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)).microsecond == 1000
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)


# -- errors ------------------------------------------------------------------------------


def test_error_messages_and_reasons() -> None:
    assert ValidationFailed("", "whole message").message == "whole message"
    assert ValidationFailed("name", "bad").message == "name: bad"
    expired = TokenExpired()
    assert isinstance(expired, InvalidCredentials)
    assert (expired.reason, expired.message, expired.code) == (
        "expired",
        "the API key has expired",
        "unauthorized",
    )
    assert str(expired) == "the API key has expired"
    assert StorageUnavailable().message == "the token database is unavailable; retry shortly"
    unknown = InvalidCredentials("unknown")
    assert (unknown.reason, unknown.message) == ("unknown", "invalid or missing API key")


def test_an_unknown_target_is_not_found_unless_probing_without_read() -> None:
    reader = Principal(token(permissions=(TOKEN_READ,)), None)
    modifier = Principal(token(permissions=(TOKEN_MODIFY,)), None)
    for action in (Action.READ, Action.UPDATE, Action.ROTATE, Action.DELETE):
        answer = unknown_target(reader, action)
        assert type(answer) is NotFound
        assert answer.message == "no API token with that id"
    for action in (Action.UPDATE, Action.ROTATE):
        denied = unknown_target(modifier, action)
        assert type(denied) is PermissionDenied
        assert denied.message == NOT_CHANGEABLE
    assert type(unknown_target(modifier, Action.DELETE)) is NotFound


# -- a token with pending usage ----------------------------------------------------------


def test_a_token_seen_with_usage_keeps_every_other_field() -> None:
    full = token(
        name="everything",
        permissions=(TOKEN_MODIFY, TOKEN_READ),
        allowed_cidr_blocks=("10.0.0.0/8", "2001:db8::/32"),
        updated_at=T0 + timedelta(hours=1),
        updated_by=Actor("00000000-0000-4000-8000-000000000002", "api-token"),
        rotated_at=T0 + timedelta(hours=2),
        last_used_at=T0 + timedelta(hours=3),
        last_used_ips=("192.0.2.1", "192.0.2.2"),
        expires_at=T0 + timedelta(days=30),
    )
    used_at = T0 + timedelta(hours=4)
    seen = full.with_usage(used_at, ("192.0.2.9", "192.0.2.2"))
    assert seen == replace(
        full,
        last_used_at=used_at,
        last_used_ips=("192.0.2.9", "192.0.2.2", "192.0.2.1"),
    )
    assert full.with_usage(None, ("192.0.2.9",)) is full
    assert full.with_usage(T0 + timedelta(hours=3), ("192.0.2.9",)) is full  # not newer
    assert token().with_usage(used_at, ()) == token(last_used_at=used_at)


def test_a_token_expires_at_its_expiry_instant() -> None:
    expiring = token(expires_at=T0)
    assert expiring.is_expired(T0 - timedelta(milliseconds=1)) is False
    assert expiring.is_expired(T0) is True
    assert token().is_expired(T0) is False


def test_normalized_blocks_name_their_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize_blocks(["10.0.0.0/8", "nonsense"])
    assert caught.value.field == "allowedCIDRBlocks"
    assert caught.value.message.startswith("allowedCIDRBlocks: 'nonsense' is not a CIDR block")
    with pytest.raises(ValidationFailed) as caught:
        normalize_blocks(["nonsense"], field="trustedProxies")
    assert caught.value.message.startswith("trustedProxies: 'nonsense' is not")
    many = [f"10.0.{n}.0/24" for n in range(101)]
    assert len(normalize_blocks(many[:100])) == 100
    with pytest.raises(ValidationFailed) as caught:
        normalize_blocks(many)
    assert caught.value.message == "allowedCIDRBlocks: at most 100 blocks are allowed"
    with pytest.raises(ValidationFailed) as caught:
        normalize_blocks(many, field="trustedProxies")
    assert caught.value.field == "trustedProxies"


def test_permissions_come_back_in_catalog_order_not_alphabetical() -> None:
    catalog = PermissionCatalog(extra=["Zeta", "Alpha"])
    assert catalog.normalize(["Alpha", "Zeta", "Alpha"]) == ("Zeta", "Alpha")


def test_a_default_lifetime_may_equal_the_maximum_but_not_exceed_it() -> None:
    day = timedelta(days=1)
    assert Lifetimes(default=day, maximum=day).resolve(None, False, T0) == T0 + day
    with pytest.raises(ValueError) as caught:
        Lifetimes(default=2 * day, maximum=day)
    assert str(caught.value) == "the default lifetime exceeds the maximum lifetime"


def test_the_text_of_an_address_is_its_usual_form_and_none_stays_none() -> None:
    assert address_text(None) is None
    assert address_text(ipaddress.ip_address("192.0.2.1")) == "192.0.2.1"
    assert address_text(ipaddress.ip_address("2001:DB8::0001")) == "2001:db8::1"
