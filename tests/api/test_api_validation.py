"""Every validation rule of the contract, Part 2: 400 (or 413) naming the field.

These tests only send refused or self-contained requests, so they share one server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import READ, TOKENS, body, create, error

from apitokens.domain.permissions import UPSTREAM_PERMISSIONS

LIMIT = 64 * 1024
ACCEPTED_FIELDS = "name, permissions, servicePermissions, allowedCIDRBlocks, expiresAt"
NOT_JSON = "the request body must be JSON, sent with Content-Type: application/json"


@pytest.fixture
def target(admin: httpx.Client) -> dict[str, Any]:
    """A token to send refused updates to."""
    return create(admin, "target", [READ], allowedCIDRBlocks=["10.0.0.0/8"])


def _refused_create(admin: httpx.Client, payload: object) -> str:
    return error(admin.post(TOKENS, json=payload), 400)


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# -- name --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_name_is_refused(admin: httpx.Client, name: str) -> None:
    assert _refused_create(admin, body(name)) == "name: must not be empty"


def test_name_of_257_characters_is_refused(admin: httpx.Client) -> None:
    assert _refused_create(admin, body("n" * 257)) == "name: must be at most 256 characters"


def test_name_of_256_characters_is_accepted(admin: httpx.Client) -> None:
    assert create(admin, "n" * 256)["name"] == "n" * 256


def test_name_is_trimmed(admin: httpx.Client) -> None:
    assert create(admin, "  spaced out  ")["name"] == "spaced out"


def test_missing_name_is_refused(admin: httpx.Client) -> None:
    assert _refused_create(admin, {"permissions": []}) == "name: is required"


# -- permissions -------------------------------------------------------------------------


def test_unknown_permission_lists_the_accepted_names(admin: httpx.Client) -> None:
    assert _refused_create(admin, body("x", [READ, "Nope"])) == (
        "permissions: unknown permission(s) Nope; accepted names are: "
        + ", ".join(UPSTREAM_PERMISSIONS)
    )


def test_missing_permissions_are_refused(admin: httpx.Client) -> None:
    assert _refused_create(admin, {"name": "x"}) == "permissions: is required"


def test_duplicated_permissions_are_collapsed(admin: httpx.Client) -> None:
    token = create(admin, "dup", [READ, "AlertRead", READ, "AlertRead"])
    assert token["permissions"] == ["AlertRead", READ]


def test_every_upstream_permission_is_accepted(admin: httpx.Client) -> None:
    token = create(admin, "all", list(reversed(UPSTREAM_PERMISSIONS)))
    assert token["permissions"] == list(UPSTREAM_PERMISSIONS)


# -- allowedCIDRBlocks -------------------------------------------------------------------


def test_unparseable_block_is_refused(admin: httpx.Client) -> None:
    assert _refused_create(admin, body("x", allowedCIDRBlocks=["nope"])) == (
        "allowedCIDRBlocks: 'nope' is not a CIDR block "
        "(expected e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
    )


@pytest.mark.parametrize("block", ["10.0.0.0/33", "300.0.0.0/8", "2001:db8::/129", ""])
def test_invalid_blocks_are_refused(admin: httpx.Client, block: str) -> None:
    message = _refused_create(admin, body("x", allowedCIDRBlocks=[block]))
    assert message.startswith("allowedCIDRBlocks: ")
    assert "is not a CIDR block" in message


def test_block_with_host_bits_suggests_the_network(admin: httpx.Client) -> None:
    assert _refused_create(admin, body("x", allowedCIDRBlocks=["10.0.0.1/8"])) == (
        "allowedCIDRBlocks: '10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?"
    )


def test_ipv6_block_with_host_bits_suggests_the_network(admin: httpx.Client) -> None:
    message = _refused_create(admin, body("x", allowedCIDRBlocks=["2001:db8::1/32"]))
    assert message == (
        "allowedCIDRBlocks: '2001:db8::1/32' has host bits set; did you mean '2001:db8::/32'?"
    )


def test_bare_addresses_mean_single_hosts(admin: httpx.Client) -> None:
    token = create(admin, "hosts", allowedCIDRBlocks=["192.0.2.7", "2001:db8::7"])
    assert token["allowedCIDRBlocks"] == ["192.0.2.7/32", "2001:db8::7/128"]


def test_ipv4_and_ipv6_blocks_are_accepted(admin: httpx.Client) -> None:
    blocks = ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0"]
    assert create(admin, "nets", allowedCIDRBlocks=blocks)["allowedCIDRBlocks"] == blocks


def test_duplicated_blocks_are_collapsed(admin: httpx.Client) -> None:
    blocks = ["10.0.0.1", "10.0.0.1/32", "2001:db8::/32", "2001:DB8::/32", "10.0.0.1"]
    token = create(admin, "dups", allowedCIDRBlocks=blocks)
    assert token["allowedCIDRBlocks"] == ["10.0.0.1/32", "2001:db8::/32"]


def test_one_hundred_blocks_are_accepted(admin: httpx.Client) -> None:
    blocks = [f"10.0.{index}.0/24" for index in range(100)]
    assert create(admin, "many", allowedCIDRBlocks=blocks)["allowedCIDRBlocks"] == blocks


def test_more_than_one_hundred_blocks_are_refused(admin: httpx.Client) -> None:
    blocks = [f"10.0.{index}.0/24" for index in range(101)]
    assert _refused_create(admin, body("x", allowedCIDRBlocks=blocks)) == (
        "allowedCIDRBlocks: at most 100 blocks are allowed"
    )


# -- unknown fields and JSON types -------------------------------------------------------


def test_misspelt_blocks_field_is_refused_with_a_suggestion(admin: httpx.Client) -> None:
    payload = body("x", allowedCidrBlocks=["10.0.0.0/8"])
    assert _refused_create(admin, payload) == (
        "allowedCidrBlocks: unknown field (did you mean allowedCIDRBlocks?)"
    )


def test_unknown_field_lists_the_accepted_fields(admin: httpx.Client) -> None:
    assert _refused_create(admin, body("x", color="red")) == (
        f"color: unknown field (accepted fields: {ACCEPTED_FIELDS})"
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": 5, "permissions": []}, "name"),
        ({"name": None, "permissions": []}, "name"),
        ({"name": ["x"], "permissions": []}, "name"),
        ({"name": "x", "permissions": READ}, "permissions"),
        ({"name": "x", "permissions": [1]}, "permissions.0"),
        ({"name": "x", "permissions": None}, "permissions"),
        ({"name": "x", "permissions": {"a": 1}}, "permissions"),
        ({"name": "x", "permissions": [], "allowedCIDRBlocks": "10.0.0.0/8"}, "allowedCIDRBlocks"),
        ({"name": "x", "permissions": [], "allowedCIDRBlocks": [10]}, "allowedCIDRBlocks.0"),
        ({"name": "x", "permissions": [], "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "x", "permissions": [], "expiresAt": [1]}, "expiresAt"),
    ],
)
def test_wrong_json_types_are_refused_naming_the_field(
    admin: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    assert _refused_create(admin, payload).startswith(f"{field}: ")


@pytest.mark.parametrize("payload", [[], ["x"], "x", 5, True])
def test_body_that_is_not_an_object_is_refused(admin: httpx.Client, payload: object) -> None:
    assert _refused_create(admin, payload) == "the request body must be a JSON object"


def test_json_null_body_is_refused(admin: httpx.Client) -> None:
    response = admin.post(TOKENS, content=b"null", headers={"content-type": "application/json"})
    assert error(response, 400) in (
        "a JSON request body is required",
        "the request body must be a JSON object",
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "x",',
        b"{'name': 'x'}",
        b"{",
        b"nul",
        b"\xff\xfe",
        b'{"name": "\xff", "permissions": []}',
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["truncated", "single-quotes", "brace", "nul", "bom", "not-utf8", "deep"],
)
def test_malformed_json_is_refused(admin: httpx.Client, raw: bytes) -> None:
    response = admin.post(TOKENS, content=raw, headers={"content-type": "application/json"})
    assert error(response, 400).startswith("malformed JSON")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_body_that_is_not_sent_as_json_is_refused(
    admin: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    raw = json.dumps(body("x")).encode()
    assert error(admin.post(TOKENS, content=raw, headers=headers), 400) == NOT_JSON


def test_json_with_a_charset_is_accepted(admin: httpx.Client) -> None:
    raw = json.dumps(body("charset")).encode()
    headers = {"content-type": "application/json; charset=utf-8"}
    assert admin.post(TOKENS, content=raw, headers=headers).status_code == 200


def test_missing_body_is_refused(admin: httpx.Client) -> None:
    response = admin.post(TOKENS, headers={"content-type": "application/json"})
    assert error(response, 400) == "a JSON request body is required"


def test_missing_body_without_content_type_is_refused(admin: httpx.Client) -> None:
    assert error(admin.post(TOKENS), 400) == "a JSON request body is required"


# -- body size ---------------------------------------------------------------------------


def _padded(size: int, name: str = "big") -> bytes:
    """A valid create body of exactly ``size`` bytes (JSON whitespace as padding)."""
    raw = json.dumps(body(name)).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_body_of_exactly_64_kib_is_accepted(admin: httpx.Client) -> None:
    raw = _padded(LIMIT)
    assert len(raw) == LIMIT
    response = admin.post(TOKENS, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200


def test_body_over_64_kib_is_refused_with_413(admin: httpx.Client) -> None:
    response = admin.post(
        TOKENS, content=_padded(LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert error(response, 413) == "request body too large: the limit is 65536 bytes"


def test_chunked_body_over_64_kib_is_refused_with_413(admin: httpx.Client) -> None:
    raw = _padded(4 * LIMIT, name="chunked")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 8192):
            yield raw[start : start + 8192]

    response = admin.post(TOKENS, content=chunks(), headers={"content-type": "application/json"})
    assert error(response, 413) == "request body too large: the limit is 65536 bytes"
    names = {token["name"] for token in admin.get(TOKENS, params={"limit": 1000}).json()["results"]}
    assert "chunked" not in names


def test_update_body_over_64_kib_is_refused_with_413(
    admin: httpx.Client, target: dict[str, Any]
) -> None:
    response = admin.post(
        f"{TOKENS}/{target['id']}",
        content=_padded(LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert error(response, 413) == "request body too large: the limit is 65536 bytes"


# -- refused requests change nothing -----------------------------------------------------


def test_refused_create_leaves_no_token(admin: httpx.Client) -> None:
    name = f"refused-{uuid.uuid4()}"
    _refused_create(admin, body(name, [READ], allowedCIDRBlocks=["10.0.0.1/8"]))
    names = {token["name"] for token in admin.get(TOKENS, params={"limit": 1000}).json()["results"]}
    assert name not in names


def test_refused_update_changes_nothing(admin: httpx.Client, target: dict[str, Any]) -> None:
    path = f"{TOKENS}/{target['id']}"
    refused = admin.post(path, json=body("renamed", [READ], allowedCIDRBlocks=["bad"]))
    assert error(refused, 400).startswith("allowedCIDRBlocks: ")
    target.pop("value")
    assert admin.get(path).json() == target


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (body(" "), "name: must not be empty"),
        (body("x", ["Nope"]), "permissions: unknown permission(s) Nope"),
        (body("x", allowedCidrBlocks=[]), "allowedCidrBlocks: unknown field"),
        (body("x", allowedCIDRBlocks=["10.0.0.1/8"]), "allowedCIDRBlocks: '10.0.0.1/8' has host"),
    ],
)
def test_update_validates_like_create(
    admin: httpx.Client, target: dict[str, Any], payload: dict[str, Any], expected: str
) -> None:
    assert error(admin.post(f"{TOKENS}/{target['id']}", json=payload), 400).startswith(expected)


def test_update_without_body_is_refused(admin: httpx.Client, target: dict[str, Any]) -> None:
    response = admin.post(f"{TOKENS}/{target['id']}")
    assert error(response, 400) == "a JSON request body is required"


# -- expiresAt (extension) ---------------------------------------------------------------


def test_expiry_in_the_past_is_refused(admin: httpx.Client) -> None:
    payload = body("x", expiresAt="2000-01-01T00:00:00Z")
    assert _refused_create(admin, payload) == "expiresAt: must be in the future"


def test_expiry_without_time_zone_is_refused(admin: httpx.Client) -> None:
    payload = body("x", expiresAt="2999-01-01T00:00:00")
    assert _refused_create(admin, payload).startswith(
        "expiresAt: must be an RFC 3339 time with a zone"
    )


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_expiry_outside_the_utc_calendar_is_refused(
    admin: httpx.Client, target: dict[str, Any], moment: str
) -> None:
    assert _refused_create(admin, body("x", expiresAt=moment)) == "expiresAt: is out of range"
    update = admin.post(f"{TOKENS}/{target['id']}", json=body("x", expiresAt=moment))
    assert error(update, 400) == "expiresAt: is out of range"


def test_expiry_is_returned_in_utc_milliseconds(admin: httpx.Client) -> None:
    token = create(admin, "later", expiresAt="2999-01-01T02:00:00.123456+02:00")
    assert token["expiresAt"] == "2999-01-01T00:00:00.123Z"


# -- list parameters ---------------------------------------------------------------------


BAD_CURSOR = "cursor: is not a valid pagination cursor; pass the `next` value of the previous page"


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        "!!!",
        "",
        _cursor([1, 2]),
        _cursor({"t": "2030-01-01T00:00:00+00:00"}),
        _cursor({"t": "2030-01-01T00:00:00", "i": "x"}),
        _cursor({"t": "yesterday", "i": "x"}),
        _cursor({"t": 5, "i": "x"}),
        _cursor({"t": "2030-01-01T00:00:00+00:00", "i": "x" * 65}),
        _cursor({"t": "0001-01-01T00:00:00+14:00", "i": "x"}),
        _cursor({"t": "9999-12-31T23:59:59-14:00", "i": "x"}),
        _cursor({"t": "2030-01-01T00:00:00+00:00", "i": "a\u0000b"}),
        _cursor({"e": 5}),
    ],
)
def test_bad_cursor_is_refused(admin: httpx.Client, cursor: str) -> None:
    assert error(admin.get(TOKENS, params={"cursor": cursor}), 400) == BAD_CURSOR


@pytest.mark.parametrize("limit", ["0", "1001", "-1"])
def test_limit_out_of_range_is_refused(admin: httpx.Client, limit: str) -> None:
    response = admin.get(TOKENS, params={"limit": limit})
    assert error(response, 400) == "limit: must be between 1 and 1000"


@pytest.mark.parametrize("limit", ["abc", "1.5", ""])
def test_limit_that_is_not_an_integer_is_refused(admin: httpx.Client, limit: str) -> None:
    assert error(admin.get(TOKENS, params={"limit": limit}), 400).startswith("limit: ")


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_limit_within_range_is_accepted(admin: httpx.Client, limit: str) -> None:
    response = admin.get(TOKENS, params={"limit": limit})
    assert response.status_code == 200
    assert 1 <= len(response.json()["results"]) <= int(limit)


# -- rotate parameters (extension) -------------------------------------------------------


@pytest.mark.parametrize("seconds", ["-1", "604801"])
def test_grace_period_out_of_range_is_refused(
    admin: httpx.Client, target: dict[str, Any], seconds: str
) -> None:
    response = admin.post(f"{TOKENS}/{target['id']}/rotate", params={"gracePeriodSeconds": seconds})
    assert error(response, 400) == "gracePeriodSeconds: must be between 0 and 604800"


def test_grace_period_that_is_not_an_integer_is_refused(
    admin: httpx.Client, target: dict[str, Any]
) -> None:
    response = admin.post(f"{TOKENS}/{target['id']}/rotate", params={"gracePeriodSeconds": "x"})
    assert error(response, 400).startswith("gracePeriodSeconds: ")
