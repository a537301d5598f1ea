"""What the API returns, as typed values: `APIToken`, `Actor` and `TokenPage`.

Parsing accepts the wire format of ``/api-tokens`` (camelCase JSON) and ignores fields it
does not know, so a newer server never breaks an older client. `APIToken.to_dict` gives
the wire format back, for printing as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx

from apitokens.client.errors import InvalidResponse

__all__ = [
    "APIToken",
    "Actor",
    "AuditEvent",
    "AuditPage",
    "TokenPage",
    "Verification",
    "format_time",
    "parse_time",
]


def parse_time(raw: str) -> datetime:
    """Parse an RFC 3339 time (``2024-05-01T12:00:00.000Z``) into an aware UTC datetime."""
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {raw!r}")
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Format an aware datetime as the API does: RFC 3339, UTC, milliseconds, ``Z``.

    Raises ValueError for a naive datetime: guessing its zone could move an expiry by hours.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a timezone (for example datetime.now(UTC))")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Actor:
    """Who made a change: ``type`` is ``"api-token"`` (id = token id) or ``"system"``."""

    id: str
    type: str

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Actor:
        return cls(id=str(raw["id"]), type=str(raw["type"]))

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type}


@dataclass(frozen=True)
class APIToken:
    """One API token as the server describes it.

    ``value`` is the secret. It is set only on the results of `create` and `rotate`, and
    is kept out of ``repr`` so that logging a token never leaks it. Times are aware UTC
    datetimes; ``expires_at`` None means the token never expires. ``last_used_ips`` and
    ``service_permissions`` (the permissions for other services, beside the upstream
    ``permissions``) are optional server extensions (None when the server does not send
    them).
    """

    id: str
    name: str
    permissions: tuple[str, ...]
    created_at: datetime
    allowed_cidr_blocks: tuple[str, ...] = ()
    created_by: Actor | None = None
    updated_at: datetime | None = None
    updated_by: Actor | None = None
    rotated_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_ips: tuple[str, ...] | None = None
    value: str | None = field(default=None, repr=False)
    service_permissions: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        shown = "<hidden>" if self.value is not None else "None"
        return (
            f"APIToken(id={self.id!r}, name={self.name!r}, permissions={self.permissions!r}, "
            f"service_permissions={self.service_permissions!r}, "
            f"allowed_cidr_blocks={self.allowed_cidr_blocks!r}, "
            f"expires_at={self.expires_at!r}, value={shown})"
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> APIToken:
        """Build from the wire format; raises `InvalidResponse` if a required field is bad."""
        try:
            return cls(**_token_fields(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidResponse(f"malformed token in response: {type(exc).__name__}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The wire format (camelCase); ``value`` is included only when it is set."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "permissions": list(self.permissions),
            "allowedCIDRBlocks": list(self.allowed_cidr_blocks),
            "createdAt": format_time(self.created_at),
            "createdBy": _actor_dict(self.created_by),
            "updatedAt": _time_str(self.updated_at),
            "updatedBy": _actor_dict(self.updated_by),
            "rotatedAt": _time_str(self.rotated_at),
            "lastUsedAt": _time_str(self.last_used_at),
            "expiresAt": _time_str(self.expires_at),
        }
        if self.last_used_ips is not None:
            out["lastUsedIPs"] = list(self.last_used_ips)
        if self.service_permissions is not None:
            out["servicePermissions"] = list(self.service_permissions)
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class TokenPage:
    """One page of the listing; ``next`` is the cursor of the following page, or None."""

    results: list[APIToken]
    next: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TokenPage:
        results = raw.get("results")
        if not isinstance(results, list):
            raise InvalidResponse("malformed listing: 'results' is not a list")
        cursor = raw.get("next")
        return cls(
            results=[APIToken.from_dict(item) for item in results],
            next=str(cursor) if cursor else None,
        )


def _token_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    ips = raw.get("lastUsedIPs")
    service = raw.get("servicePermissions")
    return {
        "id": _required_str(raw, "id"),
        "name": _required_str(raw, "name"),
        "permissions": _str_tuple(raw["permissions"]),
        "created_at": parse_time(raw["createdAt"]),
        "allowed_cidr_blocks": _str_tuple(raw.get("allowedCIDRBlocks") or []),
        "created_by": _actor(raw.get("createdBy")),
        "updated_at": _time(raw.get("updatedAt")),
        "updated_by": _actor(raw.get("updatedBy")),
        "rotated_at": _time(raw.get("rotatedAt")),
        "last_used_at": _time(raw.get("lastUsedAt")),
        "expires_at": _time(raw.get("expiresAt")),
        "last_used_ips": None if ips is None else _str_tuple(ips),
        "service_permissions": None if service is None else _str_tuple(service),
        "value": _optional_str(raw.get("value")),
    }


def _required_str(raw: Mapping[str, Any], key: str) -> str:
    item = raw[key]
    if not isinstance(item, str):
        raise TypeError(key)
    return item


def _optional_str(item: Any) -> str | None:
    if item is not None and not isinstance(item, str):
        raise TypeError("expected a string")
    return item


def _str_tuple(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise TypeError("expected a list of strings")
    return tuple(items)


def _time(raw: Any) -> datetime | None:
    return None if raw is None else parse_time(raw)


def _actor(raw: Any) -> Actor | None:
    return None if raw is None else Actor.from_dict(raw)


def _time_str(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _actor_dict(actor: Actor | None) -> dict[str, str] | None:
    return None if actor is None else actor.to_dict()


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the audit trail: who (``actor``, None for anonymous or the service
    itself) did what (``action``) to which token, from where and when. Never a value."""

    id: str
    action: str
    at: datetime
    token_id: str | None = None
    actor: Actor | None = None
    client_ip: str | None = None
    detail: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AuditEvent:
        try:
            detail = raw.get("detail")
            return cls(
                id=str(_required_str(raw, "id")),
                action=_required_str(raw, "action"),
                at=parse_time(raw["at"]),
                token_id=_optional_str(raw.get("tokenId")),
                actor=_actor(raw.get("actor")),
                client_ip=_optional_str(raw.get("clientIP")),
                detail=dict(detail) if isinstance(detail, Mapping) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidResponse(
                f"malformed audit event in response: {type(exc).__name__}"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "tokenId": self.token_id,
            "actor": _actor_dict(self.actor),
            "clientIP": self.client_ip,
            "at": format_time(self.at),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit trail, newest first; ``next`` is the following page's cursor."""

    results: list[AuditEvent]
    next: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AuditPage:
        results = raw.get("results")
        if not isinstance(results, list):
            raise InvalidResponse("malformed listing: 'results' is not a list")
        cursor = raw.get("next")
        return cls(
            [AuditEvent.from_dict(item) for item in results], str(cursor) if cursor else None
        )


@dataclass(frozen=True)
class Verification:
    """What ``/verify`` said of a token that passed: its id, name and permissions."""

    token_id: str
    name: str
    permissions: tuple[str, ...]

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> Verification:
        token_id = headers.get("X-Token-Id")
        if not token_id:
            raise InvalidResponse("verification answer without X-Token-Id")
        listed = headers.get("X-Token-Permissions", "")
        return cls(
            token_id=token_id,
            name=unquote(headers.get("X-Token-Name", "")),
            permissions=tuple(item for item in listed.split(",") if item),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.token_id, "name": self.name, "permissions": list(self.permissions)}
