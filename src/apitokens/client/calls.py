"""The API's operations as plain request descriptions, shared by both clients.

Each builder returns a `Call` (method, path, query, body); the sync and async clients only
send them. Keeping this in one place means the two clients cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

from apitokens.client.models import APIToken, format_time

__all__ = ["UNSET", "Call", "Unset"]

T = TypeVar("T")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "DELETE"})


class Unset(enum.Enum):
    """Marks an argument that was not given, where None has a meaning of its own."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET

Expiry = datetime | str | None


@dataclass(frozen=True)
class Call:
    """One HTTP request to the API, not yet sent."""

    method: str
    path: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    authenticated: bool = True

    @property
    def idempotent(self) -> bool:
        """True for GET and DELETE: the only calls ever retried (connection error, 429, 503)."""
        return self.method in IDEMPOTENT_METHODS


def token_path(token_id: str) -> str:
    """``/api-tokens/{id}`` with the id escaped; raises ValueError for an empty id."""
    if not token_id:
        raise ValueError("token id must not be empty")
    return f"/api-tokens/{quote(token_id, safe='')}"


def list_call(limit: int | None, cursor: str | None) -> Call:
    params: dict[str, str] = {}
    if limit is not None:
        params["limit"] = str(limit)
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/api-tokens", params=params or None)


def get_call(token_id: str) -> Call:
    return Call("GET", token_path(token_id))


def create_call(
    name: str,
    permissions: Sequence[str],
    allowed_cidr_blocks: Sequence[str] | None,
    expires_at: Expiry,
    service_permissions: Sequence[str] | None = None,
) -> Call:
    body = _modify_body(name, permissions, allowed_cidr_blocks)
    if expires_at is not None:
        body["expiresAt"] = _expiry(expires_at)
    if service_permissions is not None:
        body["servicePermissions"] = _names(service_permissions)
    return Call("POST", "/api-tokens", body=body)


def update_call(
    token_id: str,
    name: str,
    permissions: Sequence[str],
    allowed_cidr_blocks: Sequence[str] | None,
    expires_at: Expiry | Unset,
    service_permissions: Sequence[str] | Unset = UNSET,
) -> Call:
    body = _modify_body(name, permissions, allowed_cidr_blocks)
    if expires_at is not UNSET:
        body["expiresAt"] = None if expires_at is None else _expiry(expires_at)
    if not isinstance(service_permissions, Unset):  # left out: the server keeps them
        body["servicePermissions"] = _names(service_permissions)
    return Call("POST", token_path(token_id), body=body)


def rotate_call(token_id: str, grace_period_seconds: int | None) -> Call:
    params = None
    if grace_period_seconds is not None:
        params = {"gracePeriodSeconds": str(grace_period_seconds)}
    return Call("POST", f"{token_path(token_id)}/rotate", params=params)


def delete_call(token_id: str) -> Call:
    return Call("DELETE", token_path(token_id))


def audit_call(
    limit: int | None, cursor: str | None, token_id: str | None, action: str | None
) -> Call:
    params: dict[str, str] = {}
    for key, given in (("limit", limit), ("cursor", cursor), ("tokenId", token_id)):
        if given is not None:
            params[key] = str(given)
    if action is not None:
        params["action"] = action
    return Call("GET", "/audit-events", params=params or None)


def verify_call(permissions: Sequence[str]) -> Call:
    if isinstance(permissions, str):
        raise TypeError("permissions takes a list, not one string")
    params = {"permission": ",".join(permissions)} if permissions else None
    return Call("GET", "/verify", params=params)


def leak_call(value: str) -> Call:
    """Anonymous, as the endpoint is: the client's own token is not sent with a report."""
    return Call("POST", "/leaked-values", body={"value": value}, authenticated=False)


def given(value: T | Unset) -> T | None:
    return None if value is UNSET else value


def filled(
    current: APIToken | None, name: str | Unset, permissions: Sequence[str] | Unset
) -> tuple[str, Sequence[str]]:
    """Name and permissions to send: those given, the rest from ``current``."""
    if isinstance(name, Unset) or isinstance(permissions, Unset):
        if current is None:
            raise AssertionError("the current token is needed")
        return (
            current.name if isinstance(name, Unset) else name,
            current.permissions if isinstance(permissions, Unset) else permissions,
        )
    return name, permissions


def needs_current(name: str | Unset, permissions: Sequence[str] | Unset) -> bool:
    """The API's update replaces name and permissions: without both, read the token first."""
    return name is UNSET or permissions is UNSET


def _modify_body(
    name: str, permissions: Sequence[str], allowed_cidr_blocks: Sequence[str] | None
) -> dict[str, Any]:
    if isinstance(permissions, str) or isinstance(allowed_cidr_blocks, str):
        raise TypeError("permissions and allowed_cidr_blocks take a list, not one string")
    body: dict[str, Any] = {"name": name, "permissions": list(permissions)}
    if allowed_cidr_blocks is not None:
        body["allowedCIDRBlocks"] = list(allowed_cidr_blocks)
    return body


def _names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        raise TypeError("service_permissions takes a list, not one string")
    return list(names)


def _expiry(expires_at: datetime | str) -> str:
    return expires_at if isinstance(expires_at, str) else format_time(expires_at)
