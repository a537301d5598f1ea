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


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def token_response(token: Token, value: str | None = None) -> Response:
    headers = {"Cache-Control": "no-store"} if value is not None else None
    return json_response(token_body(token, value), headers=headers)


def page_response(items: Iterable[dict[str, Any]], next_cursor: str | None) -> Response:
    body: dict[str, Any] = {"results": list(items)}
    if next_cursor is not None:
        body["next"] = next_cursor
    return json_response(body)
