"""Pagination limits and cursors, alone: known encodings, bounds, and every crafted cursor
that must be a 400 (never a 500, never a different page)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from apitokens.domain.errors import ValidationFailed
from apitokens.service.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    check_limit,
    decode_event_cursor,
    decode_position,
    encode_event_cursor,
    encode_position,
)

BAD_CURSOR = "cursor: is not a valid pagination cursor; pass the `next` value of the previous page"
ID = "00000000-0000-4000-8000-000000000001"


def crafted(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_the_limit_defaults_to_a_hundred_and_is_between_one_and_a_thousand() -> None:
    assert (DEFAULT_LIMIT, MAX_LIMIT) == (100, 1000)
    assert check_limit(None) == 100
    assert check_limit(1) == 1
    assert check_limit(1000) == 1000
    for bad in (0, -1, 1001):
        with pytest.raises(ValidationFailed) as caught:
            check_limit(bad)
        assert caught.value.message == "limit: must be between 1 and 1000"
        assert caught.value.field == "limit"


def test_a_position_cursor_has_a_known_encoding() -> None:
    position = (datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), ID)
    cursor = encode_position(position)
    # microseconds since 0001-01-01T00:00:00Z, a dot, the id
    assert cursor == f"64029150245678000.{ID}"
    assert decode_position(cursor) == position
    assert decode_position(None) is None


def test_an_event_cursor_is_the_event_id() -> None:
    cursor = encode_event_cursor(7)
    assert cursor == "7"
    assert decode_event_cursor(cursor) == 7
    assert decode_event_cursor(None) is None


def test_a_position_in_another_zone_is_encoded_as_utc() -> None:
    moment = datetime(2030, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    parsed = decode_position(encode_position((moment, ID)))
    assert parsed == (datetime(2030, 1, 1, 12, 0, tzinfo=UTC), ID)
    assert parsed is not None and parsed[0].tzinfo is UTC


def test_a_token_id_of_64_characters_is_accepted_and_65_is_not() -> None:
    long_id = "a" * 64
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert decode_position(encode_position((at, long_id))) == (at, long_id)
    with pytest.raises(ValidationFailed):
        decode_position(encode_position((at, long_id + "a")))


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",  # not base64
        "e",  # base64 of nothing useful
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
        crafted("just a string"),
        crafted(["t", "i"]),
        crafted({"t": "2030-01-01T00:00:00+00:00"}),
        crafted({"t": "2030-01-01T00:00:00+00:00", "i": ID, "x": 1}),
        crafted({"t": 1893456000, "i": ID}),
        crafted({"t": "2030-01-01T00:00:00+00:00", "i": 5}),
        crafted({"t": "2030-01-01T00:00:00+00:00", "i": "a" * 65}),
        crafted({"t": "2030-01-01T00:00:00+00:00", "i": "a\x00b"}),
        crafted({"t": "2030-01-01T00:00:00", "i": ID}),  # no zone
        crafted({"t": "yesterday", "i": ID}),
        crafted({"t": "0001-01-01T00:00:00+14:00", "i": ID}),  # overflows moving to UTC
        crafted({"e": 1}),
    ],
)
def test_a_crafted_position_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_position(cursor)
    assert caught.value.message == BAD_CURSOR
    assert caught.value.field == "cursor"


def test_an_event_cursor_round_trips_over_its_whole_range() -> None:
    for event_id in (0, 1, 12345, 2**63 - 1):
        assert decode_event_cursor(encode_event_cursor(event_id)) == event_id
    assert decode_event_cursor(None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        crafted([1]),
        crafted({"e": 1, "f": 2}),
        crafted({"i": 1}),
        crafted({"e": "1"}),
        crafted({"e": 1.0}),
        crafted({"e": True}),
        crafted({"e": -1}),
        crafted({"e": 2**63}),
        crafted({"t": "2030-01-01T00:00:00+00:00", "i": ID}),
    ],
)
def test_a_crafted_event_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_event_cursor(cursor)
    assert caught.value.message == BAD_CURSOR


def test_the_latest_position_a_cursor_can_name() -> None:
    from apitokens.service.pagination import MAX_CURSOR_MICROS, decode_position

    latest = decode_position(f"{MAX_CURSOR_MICROS}.x")
    assert latest == (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "x")
    with pytest.raises(ValidationFailed):
        decode_position(f"{MAX_CURSOR_MICROS + 1}.x")
