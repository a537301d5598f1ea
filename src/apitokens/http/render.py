"""Domain values to JSON bytes. orjson, not response-model validation, on the hot path."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from apitokens.domain.audit import AuditEvent
from apitokens.domain.permissions import service_of, upstream_of
from apitokens.domain.tokens import Actor, Token
from apitokens.http.kept import Kept


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # isoformat truncates to milliseconds as strftime did, at a fraction of the cost (a
    # token body holds six times, rendered on every GET of self).
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


@functools.lru_cache(maxsize=16384)
def _stamp(moment: datetime | None) -> str | None:
    # Cached (bounded): a token's creation, update, rotation and expiry times are rendered
    # on every GET of it, and stay the same between its changes.
    return rfc3339(moment)


@functools.lru_cache(maxsize=4096)
def _split(permissions: tuple[str, ...]) -> tuple[list[str], list[str]]:
    # Cached (bounded): the same permission sets are rendered again and again. Copied by
    # the caller, so no body shares a list with another.
    return upstream_of(permissions), service_of(permissions)


def _actor(actor: Actor | None) -> dict[str, str] | None:
    return {"id": actor.id, "type": actor.type} if actor else None


def token_body(token: Token, value: str | None = None) -> dict[str, Any]:
    upstream, service = _split(token.permissions)
    body: dict[str, Any] = {
        "id": token.id,
        "name": token.name,
        "permissions": list(upstream),
        "servicePermissions": list(service),
        "allowedCIDRBlocks": list(token.allowed_cidr_blocks),
        "createdAt": _stamp(token.created_at),
        "createdBy": _actor(token.created_by),
        "updatedAt": _stamp(token.updated_at),
        "updatedBy": _actor(token.updated_by),
        "rotatedAt": _stamp(token.rotated_at),
        "lastUsedAt": rfc3339(token.last_used_at),  # new on every use: not worth caching
        "lastUsedIPs": list(token.last_used_ips),
        "expiresAt": _stamp(token.expires_at),
    }
    if value is not None:
        body["value"] = value
    return body


_fixed: Kept[str, tuple[bytes, bytes]] = Kept(16384)
"""The fixed JSON parts of token bodies, by token id (``token_json``)."""


def _fixed_fields(token: Token) -> tuple[object, ...]:
    # Everything of a body but the usage: a token's stored state between its changes.
    return (
        token.name,
        token.permissions,
        token.allowed_cidr_blocks,
        token.created_at,
        token.created_by,
        token.updated_at,
        token.updated_by,
        token.rotated_at,
        token.expires_at,
    )


def _render_fixed(token: Token) -> tuple[bytes, bytes]:
    """The JSON of ``token_body(token)`` before ``lastUsedAt`` and after ``lastUsedIPs``."""
    body = token_body(token)
    head = orjson.dumps({k: v for k, v in body.items() if k not in _USAGE_AND_AFTER})
    tail = orjson.dumps({"expiresAt": body["expiresAt"]})
    return head[:-1] + b",", b"," + tail[1:]


_USAGE_AND_AFTER = frozenset({"lastUsedAt", "lastUsedIPs", "expiresAt"})


def token_json(token: Token) -> bytes:
    """``orjson.dumps(token_body(token))``, the same bytes, with the parts that stay the
    same between the token's changes rendered once (the hot path: every GET of self)."""
    # Kept while the token's fields are equal: the cached credential's token, and every
    # copy ``with_usage`` makes of it, hold the very same objects.
    head, tail = _fixed.get(token.id, _fixed_fields(token), _render_fixed, token)
    usage = orjson.dumps(
        {"lastUsedAt": rfc3339(token.last_used_at), "lastUsedIPs": token.last_used_ips}
    )
    return head + usage[1:-1] + tail


def event_body(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "action": event.action,
        "tokenId": event.token_id,
        "actor": _actor(event.actor),
        "clientIP": event.client_ip,
        "at": rfc3339(event.at),
        "detail": event.detail,
    }


class Rendered(Response):
    """An answer whose body and header bytes are already made: what Starlette's
    ``Response`` would send, without building its headers again."""

    def __init__(
        self, body: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers[:]  # a copy: a later layer may add to this answer's


_JSON_TYPE = (b"content-type", b"application/json")


def json_bytes(body: bytes, status_code: int = 200) -> Rendered:
    """A JSON answer from bytes already rendered, with the headers Starlette's ``Response``
    would give it (``content-length`` unless the status has no body, ``content-type``)."""
    if status_code < 200 or status_code in (204, 304):
        return Rendered(body, status_code, [_JSON_TYPE])
    return Rendered(
        body, status_code, [(b"content-length", str(len(body)).encode("latin-1")), _JSON_TYPE]
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if headers is None:
        return json_bytes(orjson.dumps(body), status)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def token_response(token: Token, value: str | None = None) -> Response:
    if value is None:
        return json_bytes(token_json(token))
    return json_response(token_body(token, value), headers={"Cache-Control": "no-store"})


def page_response(items: Iterable[dict[str, Any]], next_cursor: str | None) -> Response:
    body: dict[str, Any] = {"results": list(items)}
    if next_cursor is not None:
        body["next"] = next_cursor
    return json_response(body)
