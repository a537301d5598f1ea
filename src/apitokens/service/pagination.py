"""Opaque pagination cursors: base64url JSON of the last item's sort key."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

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


def _encode(payload: object) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor", _BAD_CURSOR) from None


def encode_position(position: Position) -> str:
    return _encode({"t": position[0].isoformat(), "i": position[1]})


def decode_position(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    payload = _decode(cursor)
    if not isinstance(payload, dict) or set(payload) != {"t", "i"}:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    moment, token_id = payload["t"], payload["i"]
    if not isinstance(moment, str) or not isinstance(token_id, str) or len(token_id) > 64:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    if "\x00" in token_id:  # PostgreSQL refuses NUL in text: 400, not 500
        raise ValidationFailed("cursor", _BAD_CURSOR)
    try:
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("a cursor time carries a zone")
        parsed = parsed.astimezone(UTC)  # a crafted year 1 or 9999 overflows here
    except (ValueError, OverflowError):
        raise ValidationFailed("cursor", _BAD_CURSOR) from None
    return parsed, token_id


def encode_event_cursor(event_id: int) -> str:
    return _encode({"e": event_id})


def decode_event_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    payload = _decode(cursor)
    if not isinstance(payload, dict) or set(payload) != {"e"}:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    event_id = payload["e"]
    if not isinstance(event_id, int) or isinstance(event_id, bool) or not 0 <= event_id < 2**63:
        raise ValidationFailed("cursor", _BAD_CURSOR)
    return event_id
