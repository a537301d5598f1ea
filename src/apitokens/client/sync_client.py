"""`Client`: the blocking client of the API token service."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

import httpx

from apitokens.client import calls
from apitokens.client.calls import UNSET, Call, Expiry, Unset
from apitokens.client.models import APIToken, AuditEvent, AuditPage, TokenPage, Verification
from apitokens.client.wire import (
    DEFAULT_HEADERS,
    RetryPolicy,
    audit_page_of,
    auth_of,
    base_url_of,
    checked,
    connection_failed,
    page_of,
    plain_http_transport,
    require_auth,
    token_of,
)

__all__ = ["Client"]

Timeout = float | None | Unset


class Client:
    """A blocking client for ``/api-tokens`` and the service's extensions.

    ``base_url`` defaults to ``APITOKENS_URL`` (else http://127.0.0.1:8000) and ``token`` to
    ``APITOKENS_TOKEN``. The token is sent as ``X-API-Key`` and never appears in ``repr``.
    ``timeout`` (seconds, None for none) applies to each request; every method also takes
    ``timeout=`` for that call alone. GET and DELETE are retried ``retries`` times after a
    connection error, a 429 or a 503, waiting the server's ``Retry-After`` (at most
    ``max_retry_wait`` seconds) or a doubling backoff from ``backoff``; create, update, rotate
    and reports are sent once. ``transport`` replaces the network (``httpx.MockTransport``);
    ``http_client`` brings your own ``httpx.Client`` (proxies, TLS, event hooks), which this
    client uses but never closes. ``sleep`` is how the client waits (tests pass their own).

    Every method raises a subclass of `APITokensError` on failure: `BadRequest`,
    `Unauthorized`, `Forbidden`, `NotFound`, `RateLimited`, `ServerError` for an HTTP error
    with the server's message, `ConnectionFailed` when no response arrived. Wherever a
    method takes a token id, ``"self"`` means the token the client authenticates with.
    Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float | None = 10.0,
        retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff: float = 0.2,
        http_client: httpx.Client | None = None,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("give transport or http_client, not both")
        self._base_url = base_url_of(base_url)
        self._auth = auth_of(token)
        self._policy = RetryPolicy(retries=retries, backoff=backoff, max_wait=max_retry_wait)
        self._timeout = timeout
        self._sleep = sleep
        self._owns_http = http_client is None
        if http_client is None and transport is None:
            transport = plain_http_transport(self._base_url)
        self._http = http_client or httpx.Client(transport=transport)

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
        """Close the connection pool (not a ``http_client`` you brought: that is yours)."""
        if self._owns_http:
            self._http.close()

    def list(
        self, limit: int | None = None, cursor: str | None = None, *, timeout: Timeout = UNSET
    ) -> TokenPage:
        """One page of tokens, newest first. ``cursor`` is the ``next`` of the previous page;
        ``limit`` defaults to the server's (100, at most 1000). A bad cursor is `BadRequest`.
        """
        return page_of(self._send(calls.list_call(limit, cursor), timeout))

    def iter_tokens(self, page_size: int = 100, *, timeout: Timeout = UNSET) -> Iterator[APIToken]:
        """Every token, following ``next`` from page to page (one request per page)."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor, timeout=timeout)
            yield from page.results
            if page.next is None:
                return
            cursor = page.next

    def get(self, id: str, *, timeout: Timeout = UNSET) -> APIToken:
        """The token with this id (``"self"`` allowed); `NotFound` if there is none."""
        return token_of(self._send(calls.get_call(id), timeout))

    def self_token(self, *, timeout: Timeout = UNSET) -> APIToken:
        """The token this client authenticates with (allowed whatever its permissions)."""
        return self.get("self", timeout=timeout)

    def create(
        self,
        name: str,
        permissions: Sequence[str],
        allowed_cidr_blocks: Sequence[str] | None = None,
        expires_at: Expiry = None,
        *,
        service_permissions: Sequence[str] | None = None,
        timeout: Timeout = UNSET,
    ) -> APIToken:
        """Create a token and return it with its ``value``, which is never shown again.

        ``allowed_cidr_blocks`` None or empty allows any address. ``expires_at`` (an aware
        datetime or an RFC 3339 string) None leaves the server's default lifetime.
        ``service_permissions`` are the server's extra names for other services (extension;
        ``permissions`` takes upstream names only). The caller must hold every permission it
        grants, or `Forbidden` is raised.
        """
        call = calls.create_call(
            name, permissions, allowed_cidr_blocks, expires_at, service_permissions
        )
        return token_of(self._send(call, timeout))

    def update(
        self,
        id: str,
        name: str | Unset = UNSET,
        permissions: Sequence[str] | Unset = UNSET,
        allowed_cidr_blocks: Sequence[str] | Unset | None = UNSET,
        expires_at: Expiry | Unset = UNSET,
        *,
        service_permissions: Sequence[str] | Unset = UNSET,
        timeout: Timeout = UNSET,
    ) -> APIToken:
        """Change what is given and keep the rest: ``update(id, name="new")`` renames.

        The API's update replaces name and permissions together, so when either is left out
        the token is read first and its current value sent back (a change made by someone
        else between the two requests is overwritten). ``permissions`` replaces the whole
        set. ``allowed_cidr_blocks`` left out (or None) keeps the blocks; ``[]`` clears them.
        ``expires_at`` left out keeps the expiry; None removes it (never expires).
        ``service_permissions`` left out keeps the server-side extra names; ``[]`` removes them.
        """
        current = self.get(id, timeout=timeout) if calls.needs_current(name, permissions) else None
        new_name, new_permissions = calls.filled(current, name, permissions)
        blocks = calls.given(allowed_cidr_blocks)
        call = calls.update_call(
            id, new_name, new_permissions, blocks, expires_at, service_permissions
        )
        return token_of(self._send(call, timeout))

    def rotate(
        self, id: str, grace_period_seconds: int | None = None, *, timeout: Timeout = UNSET
    ) -> APIToken:
        """Issue a new value (returned in ``value``); the old one stops working at once, or
        after ``grace_period_seconds``. Never retried: a lost response loses the new value.
        """
        return token_of(self._send(calls.rotate_call(id, grace_period_seconds), timeout))

    def delete(self, id: str, *, timeout: Timeout = UNSET) -> None:
        """Delete a token; it stops authenticating at once. `NotFound` if there is none.

        A retried delete whose first attempt reached the server may report `NotFound`.
        """
        self._send(calls.delete_call(id), timeout)

    def audit_events(
        self,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        token_id: str | None = None,
        action: str | None = None,
        timeout: Timeout = UNSET,
    ) -> AuditPage:
        """One page of the audit trail, newest first (``GET /audit-events``); needs
        ``OrganizationAPITokenRead``. ``token_id`` and ``action`` filter it."""
        call = calls.audit_call(limit, cursor, token_id, action)
        return audit_page_of(self._send(call, timeout))

    def iter_audit_events(
        self,
        page_size: int = 100,
        *,
        token_id: str | None = None,
        action: str | None = None,
        timeout: Timeout = UNSET,
    ) -> Iterator[AuditEvent]:
        """Every audit event (filtered), following ``next`` from page to page."""
        cursor: str | None = None
        while True:
            page = self.audit_events(
                page_size, cursor, token_id=token_id, action=action, timeout=timeout
            )
            yield from page.results
            if page.next is None:
                return
            cursor = page.next

    def verify(self, permissions: Sequence[str] = (), *, timeout: Timeout = UNSET) -> Verification:
        """Ask ``/verify`` whether this client's token is valid from here and holds every
        permission given: returns its id, name and permissions; raises `Unauthorized`,
        `Forbidden` (a permission missing, or outside its blocks) or `BadRequest` (a
        permission not in the catalog)."""
        return Verification.from_headers(
            self._send(calls.verify_call(permissions), timeout).headers
        )

    def report_leak(self, value: str, *, timeout: Timeout = UNSET) -> None:
        """Report a leaked value (``POST /leaked-values``): a working value is revoked at
        once. Anonymous (no token needed or sent), and the answer never says whether the
        value was valid. Sent once."""
        self._send(calls.leak_call(value), timeout)

    def _send(self, call: Call, timeout: Timeout) -> httpx.Response:
        auth = require_auth(self._auth, call)
        attempts = self._policy.attempts(call)
        options: dict[str, Any] = {
            "params": call.params,
            "json": call.body,
            "headers": DEFAULT_HEADERS,
            "auth": auth,
            "timeout": self._timeout if timeout is UNSET else timeout,
        }
        for attempt in range(attempts):
            try:
                response = self._http.request(call.method, self._base_url + call.path, **options)
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise connection_failed(self._base_url, call, exc) from exc
                self._sleep(self._policy.delay(attempt))
                continue
            wait = self._policy.wait_after(call, attempt, response)
            if wait is None:
                return checked(response)
            response.close()
            self._sleep(wait)
        raise AssertionError("unreachable")
