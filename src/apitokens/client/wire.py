"""What both clients share on the wire: authentication, retry policy, response reading."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

import httpx

from apitokens.client.calls import Call
from apitokens.client.errors import (
    APITokensError,
    ConnectionFailed,
    InvalidResponse,
    error_from_response,
)
from apitokens.client.models import APIToken, TokenPage

API_KEY_HEADER: Final = "X-API-Key"
DEFAULT_HEADERS: Final = {"Accept": "application/json", "User-Agent": "apitokens-client"}

# Printable ASCII without spaces: anything else is not a token, and rejecting it here keeps
# the value out of the header-encoding errors that would otherwise quote it.
_TOKEN_SHAPE: Final = re.compile(r"[\x21-\x7e]+")


class APIKeyAuth(httpx.Auth):
    """Adds ``X-API-Key`` to each request, so the value is not kept in the client's headers."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise ValueError("token must be a non-empty string of printable ASCII characters")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers[API_KEY_HEADER] = self._token
        yield request

    def __repr__(self) -> str:
        return "APIKeyAuth(<hidden>)"


@dataclass(frozen=True)
class RetryPolicy:
    """Connection errors are retried ``retries`` times, for idempotent calls only.

    A POST that failed mid-flight may have been applied: repeating a create would make a
    second token and repeating a rotate would throw away the value of the first.
    """

    retries: int = 2
    backoff: float = 0.2

    def attempts(self, call: Call) -> int:
        return 1 + (max(0, self.retries) if call.idempotent else 0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return float(self.backoff * (2**attempt))


def connection_failed(base_url: str, call: Call, exc: httpx.TransportError) -> ConnectionFailed:
    reason = str(exc) or type(exc).__name__
    return ConnectionFailed(f"{call.method} {base_url}{call.path} failed: {reason}")


def checked(response: httpx.Response) -> httpx.Response:
    """The response itself if it succeeded; raises the matching `APITokensError` otherwise."""
    if response.is_success:
        return response
    raise error_from_response(response)


def token_of(response: httpx.Response) -> APIToken:
    return APIToken.from_dict(_json_object(response))


def page_of(response: httpx.Response) -> TokenPage:
    return TokenPage.from_dict(_json_object(response))


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise InvalidResponse("response is not JSON", response.status_code) from exc
    if not isinstance(body, dict):
        raise InvalidResponse("response is not a JSON object", response.status_code)
    return body


__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_HEADERS",
    "APIKeyAuth",
    "APITokensError",
    "RetryPolicy",
    "checked",
    "connection_failed",
    "page_of",
    "token_of",
]
