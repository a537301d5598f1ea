"""`Client`: the blocking client of the API token service."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from types import TracebackType

import httpx

from apitokens.client import calls
from apitokens.client.calls import UNSET, Call, Expiry, Unset
from apitokens.client.models import APIToken, TokenPage
from apitokens.client.wire import (
    DEFAULT_HEADERS,
    APIKeyAuth,
    RetryPolicy,
    checked,
    connection_failed,
    page_of,
    token_of,
)

__all__ = ["Client"]


class Client:
    """A blocking client for ``/api-tokens``.

    ``token`` is sent as ``X-API-Key`` on every request and never appears in ``repr``.
    ``timeout`` (seconds) applies to each request. Connection errors and timeouts are
    retried ``retries`` times with a doubling backoff from ``backoff`` seconds, for GET
    and DELETE only; create, update and rotate are sent once. ``transport`` replaces the
    network (for example ``httpx.MockTransport``).

    Every method raises a subclass of `APITokensError` on failure: `BadRequest`,
    `Unauthorized`, `Forbidden`, `NotFound`, `RateLimited`, `ServerError` for an HTTP error
    with the server's message, `ConnectionFailed` when no response arrived. Wherever a
    method takes a token id, ``"self"`` means the token the client authenticates with.
    Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff: float = 0.2,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._policy = RetryPolicy(retries=retries, backoff=backoff)
        self._http = httpx.Client(
            base_url=self._base_url,
            auth=APIKeyAuth(token),
            timeout=timeout,
            transport=transport,
            headers=DEFAULT_HEADERS,
        )

    def __repr__(self) -> str:
        return f"Client(base_url={self._base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    def list(self, limit: int | None = None, cursor: str | None = None) -> TokenPage:
        """One page of tokens, newest first. ``cursor`` is the ``next`` of the previous page;
        ``limit`` defaults to the server's (100, at most 1000). A bad cursor is `BadRequest`.
        """
        return page_of(self._send(calls.list_call(limit, cursor)))

    def iter_tokens(self, page_size: int = 100) -> Iterator[APIToken]:
        """Every token, following ``next`` from page to page (one request per page)."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.results
            if page.next is None:
                return
            cursor = page.next

    def get(self, id: str) -> APIToken:
        """The token with this id (``"self"`` allowed); `NotFound` if there is none."""
        return token_of(self._send(calls.get_call(id)))

    def self_token(self) -> APIToken:
        """The token this client authenticates with (allowed whatever its permissions)."""
        return self.get("self")

    def create(
        self,
        name: str,
        permissions: Sequence[str],
        allowed_cidr_blocks: Sequence[str] | None = None,
        expires_at: Expiry = None,
    ) -> APIToken:
        """Create a token and return it with its ``value``, which is never shown again.

        ``allowed_cidr_blocks`` None or empty allows any address. ``expires_at`` (an aware
        datetime or an RFC 3339 string) None leaves the server's default lifetime.
        The caller must hold every permission it grants, or `Forbidden` is raised.
        """
        call = calls.create_call(name, permissions, allowed_cidr_blocks, expires_at)
        return token_of(self._send(call))

    def update(
        self,
        id: str,
        name: str,
        permissions: Sequence[str],
        allowed_cidr_blocks: Sequence[str] | None = None,
        expires_at: Expiry | Unset = UNSET,
    ) -> APIToken:
        """Replace a token's name and permissions.

        ``allowed_cidr_blocks`` None keeps the current blocks; ``[]`` clears them.
        ``expires_at`` left out keeps the current expiry; None sends ``null`` (never expires).
        """
        call = calls.update_call(id, name, permissions, allowed_cidr_blocks, expires_at)
        return token_of(self._send(call))

    def rotate(self, id: str, grace_period_seconds: int | None = None) -> APIToken:
        """Issue a new value (returned in ``value``); the old one stops working at once, or
        after ``grace_period_seconds``. Never retried: a lost response loses the new value.
        """
        return token_of(self._send(calls.rotate_call(id, grace_period_seconds)))

    def delete(self, id: str) -> None:
        """Delete a token; it stops authenticating at once. `NotFound` if there is none.

        A retried delete whose first attempt reached the server may report `NotFound`.
        """
        self._send(calls.delete_call(id))

    def _send(self, call: Call) -> httpx.Response:
        attempts = self._policy.attempts(call)
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise connection_failed(self._base_url, call, exc) from exc
                time.sleep(self._policy.delay(attempt))
            else:
                return checked(response)
        raise AssertionError("unreachable")
