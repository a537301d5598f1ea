"""Opaque pagination cursors: the last item's sort key, as plain text.

Tokens: ``<microseconds since 0001-01-01>.<id>``; audit events: the event id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from apitokens.domain.errors import ValidationFailed
from apitokens.storage.port import Position

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_BAD_CURSOR = "is not a valid pagination cursor; pass the `next` value of the previous page"


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


# Cursors are plain text that a pattern in the OpenAPI document describes exactly, and
# every cursor of the right shape is a valid position (a sort key to continue after), so
# a request that matches the document is answered (docs/decisions.md, "Pagination").
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
MAX_CURSOR_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // (
    timedelta(microseconds=1)
)
MAX_EVENT_ID = 2**63 - 1
CURSOR_ID_CLASS = "[0-9A-Za-z_-]"  # token and webhook ids (UUIDs), delivery ids (msg_<hex>)
MAX_CURSOR_ID_LENGTH = 64
_POSITION = re.compile(f"([0-9]{{1,18}})\\.({CURSOR_ID_CLASS}{{1,{MAX_CURSOR_ID_LENGTH}}})")
_EVENT = re.compile("[0-9]{1,19}")


def encode_position(position: Position) -> str:
    micros = (position[0].astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{position[1]}"


def decode_position(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    found = _POSITION.fullmatch(cursor)
    if found is None or int(found.group(1)) > MAX_CURSOR_MICROS:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    return _EPOCH + timedelta(microseconds=int(found.group(1))), found.group(2)


def encode_event_cursor(event_id: int) -> str:
    return str(event_id)


def decode_event_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if _EVENT.fullmatch(cursor) is None or int(cursor) > MAX_EVENT_ID:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    return int(cursor)
