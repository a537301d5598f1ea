"""Helpers for the HTTP tests: create tokens, read error messages, check time formats."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
MANAGER = (MODIFY, READ)
TOKENS = "/api-tokens"
INVALID_KEY = "invalid or missing API key"
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TOKEN_FIELDS = {
    "id",
    "name",
    "permissions",
    "allowedCIDRBlocks",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
    "rotatedAt",
    "lastUsedAt",
    "expiresAt",
}


def body(name: str, permissions: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    """A ModifyAPIToken body; extra keyword fields are added as given."""
    return {"name": name, "permissions": list(permissions), **fields}


def create(
    client: httpx.Client, name: str, permissions: Sequence[str] = (), **fields: Any
) -> dict[str, Any]:
    """Create a token through the API; return the response body (with ``value``)."""
    response = client.post(TOKENS, json=body(name, permissions, **fields))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def message(response: httpx.Response) -> str:
    """The ``message`` of an error body (which must be a JSON object with one)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    text: str = response.json()["message"]
    return text


def error(response: httpx.Response, status: int) -> str:
    """Assert the status, return the error message."""
    assert response.status_code == status, response.text
    return message(response)
