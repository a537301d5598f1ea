"""The token record: expiry, pending usage, recent addresses, the principal."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from apitokens.domain.clock import SystemClock, to_millis
from apitokens.domain.tokens import (
    API_TOKEN,
    SYSTEM,
    Actor,
    Credential,
    Principal,
    Token,
    merge_ips,
)

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def _token(**fields: object) -> Token:
    base: dict[str, object] = {
        "id": "t1",
        "name": "ci",
        "permissions": (),
        "allowed_cidr_blocks": (),
        "created_at": NOW,
        "created_by": Actor("admin", SYSTEM),
    }
    return Token(**{**base, **fields})  # type: ignore[arg-type]


def test_token_without_expiry_never_expires() -> None:
    assert not _token().is_expired(NOW + timedelta(days=10_000))


def test_token_expires_at_its_expiry_instant() -> None:
    token = _token(expires_at=NOW)
    assert not token.is_expired(NOW - timedelta(milliseconds=1))
    assert token.is_expired(NOW)


def test_with_usage_moves_last_used_forward_only() -> None:
    token = _token(last_used_at=NOW, last_used_ips=("192.0.2.1",))
    assert token.with_usage(NOW - timedelta(seconds=1), ("192.0.2.9",)) is token
    later = token.with_usage(NOW + timedelta(seconds=1), ("192.0.2.9",))
    assert later.last_used_at == NOW + timedelta(seconds=1)
    assert later.last_used_ips == ("192.0.2.9", "192.0.2.1")  # pending first, then stored


def test_with_usage_without_pending_usage_is_unchanged() -> None:
    token = _token()
    assert token.with_usage(None, ()) is token


def test_merge_ips_keeps_five_distinct_newest_first() -> None:
    merged = merge_ips(["a", "b"], ["b", "c", "d", "e", "f", "g"])
    assert merged == ["a", "b", "c", "d", "e"]


def test_principal_actor_is_its_token() -> None:
    principal = Principal(_token(permissions=("AlertRead",)), ipaddress.ip_address("192.0.2.1"))
    assert principal.actor == Actor("t1", API_TOKEN)
    assert principal.client_ip == "192.0.2.1"
    assert principal.holds("AlertRead")
    assert not principal.holds("AlertModify")


def test_credential_allows_by_the_token_blocks() -> None:
    credential = Credential.of(_token(allowed_cidr_blocks=("10.0.0.0/8",)), "d", None)
    assert credential.allows(ipaddress.ip_address("10.2.3.4"))
    assert not credential.allows(ipaddress.ip_address("11.2.3.4"))
    assert not credential.allows(None)


def test_to_millis_truncates_and_converts_to_utc() -> None:
    moment = datetime(2030, 1, 1, 12, 0, 0, 123_999, tzinfo=UTC)
    assert to_millis(moment) == datetime(2030, 1, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def test_system_clock_is_aware_utc_in_milliseconds() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert now.microsecond % 1000 == 0
