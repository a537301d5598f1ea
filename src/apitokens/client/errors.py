"""Typed errors: one class per kind of failure, each carrying the server's message.

Every error body of the API is ``{"message": "..."}``; `error_from_response` turns a
failed response into the matching exception. Messages come from the server or from the
transport and never contain a token value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "APITokensError",
    "BadRequest",
    "ConnectionFailed",
    "Forbidden",
    "InvalidResponse",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "error_from_response",
]


class APITokensError(Exception):
    """Base of every client error.

    ``status_code`` is the HTTP status, or None when no response arrived;
    ``message`` is the server's ``message`` (or a description of what went wrong).
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        if self.status_code is None:
            return self.message
        return f"{self.message} (HTTP {self.status_code})"


class BadRequest(APITokensError):
    """The request was refused as invalid: 400, 413 (body too large) or 422."""


class Unauthorized(APITokensError):
    """401: the key is missing, unknown, revoked or expired."""


class Forbidden(APITokensError):
    """403: the key lacks a permission, or is used from outside its allowed CIDR blocks."""


class NotFound(APITokensError):
    """404: no token with that id (deleted, never existed, or malformed id)."""


class RateLimited(APITokensError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, status_code: int = 429, retry_after: float | None = None):
        super().__init__(message, status_code)
        self.retry_after = retry_after


class ServerError(APITokensError):
    """5xx: the server failed. Safe to retry only for idempotent calls.

    ``retry_after`` is the server's ``Retry-After`` in seconds (503 carries it), if any.
    """

    def __init__(self, message: str, status_code: int = 500, retry_after: float | None = None):
        super().__init__(message, status_code)
        self.retry_after = retry_after


class ConnectionFailed(APITokensError):
    """No response: the server could not be reached or the request timed out."""


class InvalidResponse(APITokensError):
    """The server answered with something that is not the API's format."""


_BY_STATUS: dict[int, type[APITokensError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: BadRequest,
    422: BadRequest,
}


def error_from_response(response: httpx.Response) -> APITokensError:
    """The exception for a failed (non-2xx) response, carrying its status and message."""
    status = response.status_code
    message = _message_of(response)
    if status == 429:
        return RateLimited(message, status, _retry_after(response))
    if status >= 500:
        return ServerError(message, status, _retry_after(response))
    return _BY_STATUS.get(status, APITokensError)(message, status)


def _message_of(response: httpx.Response) -> str:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after(response)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (given as seconds or as an HTTP date), or None."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
