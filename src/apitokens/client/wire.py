"""What both clients share on the wire: authentication, retry policy, response reading."""

from __future__ import annotations

import functools
import json
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, Final

import httpx

from apitokens.client.calls import Call
from apitokens.client.errors import (
    APITokensError,
    ConnectionFailed,
    InvalidResponse,
    error_from_response,
    retry_after,
)
from apitokens.client.models import APIToken, AuditPage, TokenPage

DEFAULT_URL: Final = "http://127.0.0.1:8000"
RETRY_STATUSES: Final = frozenset({429, 503})
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


def base_url_of(base_url: str | None) -> str:
    """The given URL, else ``APITOKENS_URL``, else http://127.0.0.1:8000; no trailing slash."""
    return (base_url or os.environ.get("APITOKENS_URL") or DEFAULT_URL).rstrip("/")


def plain_http_transport(base_url: str) -> httpx.HTTPTransport | None:
    """For a plain-HTTP ``base_url``, httpx's default transport without its TLS set-up (it
    loads the CA certificates: 60 ms, a fifth of an ``apitokens tokens`` command); None (the
    default transport) otherwise. Every request goes to ``base_url`` and no redirect is
    followed, so TLS is never used; if it were, it would fail: the context trusts no one."""
    return httpx.HTTPTransport(verify=_no_tls()) if _is_plain_http(base_url) else None


def plain_http_async_transport(base_url: str) -> httpx.AsyncHTTPTransport | None:
    """`plain_http_transport` for the asyncio client."""
    return httpx.AsyncHTTPTransport(verify=_no_tls()) if _is_plain_http(base_url) else None


def _is_plain_http(base_url: str) -> bool:
    return base_url[:7].lower() == "http://"


@functools.cache
def _no_tls() -> ssl.SSLContext:
    """Verifies certificates and host names, with no certificate authority to trust."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def auth_of(token: str | None) -> APIKeyAuth | None:
    """Authentication with the given token, else ``APITOKENS_TOKEN``; None if neither is set
    (then only `report_leak`, which is anonymous, can be called)."""
    token = token if token is not None else os.environ.get("APITOKENS_TOKEN")
    return None if token is None else APIKeyAuth(token)


def require_auth(auth: APIKeyAuth | None, call: Call) -> APIKeyAuth | None:
    if not call.authenticated:
        return None
    if auth is None:
        raise ValueError("no token: pass token= or set APITOKENS_TOKEN")
    return auth


@dataclass(frozen=True)
class RetryPolicy:
    """Idempotent calls (GET, DELETE) are retried ``retries`` times after a connection error,
    a 429 or a 503; create, update, rotate and reports are sent once.

    A POST that failed mid-flight may have been applied: repeating a create would make a
    second token and repeating a rotate would throw away the value of the first. The wait
    is the server's ``Retry-After`` when it gives one, else ``backoff`` doubling each time;
    a ``Retry-After`` longer than ``max_wait`` is not waited for (the error is raised).
    """

    retries: int = 2
    backoff: float = 0.2
    max_wait: float = 30.0

    def attempts(self, call: Call) -> int:
        return 1 + (max(0, self.retries) if call.idempotent else 0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return float(self.backoff * (2**attempt))

    def wait_after(self, call: Call, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying after ``response``; None: do not retry."""
        if response.status_code not in RETRY_STATUSES or attempt + 1 >= self.attempts(call):
            return None
        hinted = retry_after(response)
        wait = self.delay(attempt) if hinted is None else hinted
        return wait if wait <= self.max_wait else None


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


def audit_page_of(response: httpx.Response) -> AuditPage:
    return AuditPage.from_dict(_json_object(response))


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
    "audit_page_of",
    "auth_of",
    "base_url_of",
    "checked",
    "connection_failed",
    "page_of",
    "require_auth",
    "token_of",
]
