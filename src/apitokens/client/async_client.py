"""`AsyncClient`: the asyncio client of the API token service, twin of `Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
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

__all__ = ["AsyncClient"]


class AsyncClient:
    """The asyncio twin of `Client`: same arguments, same errors, methods are coroutines.

    ``iter_tokens`` is an async iterator (``async for token in client.iter_tokens()``).
    Use with ``async with``, or await `aclose`. The token never appears in ``repr``.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        backoff: float = 0.2,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._policy = RetryPolicy(retries=retries, backoff=backoff)
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            auth=APIKeyAuth(token),
            timeout=timeout,
            transport=transport,
            headers=DEFAULT_HEADERS,
        )

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self._base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    async def list(self, limit: int | None = None, cursor: str | None = None) -> TokenPage:
        """One page of tokens; see `Client.list`."""
        return page_of(await self._send(calls.list_call(limit, cursor)))

    async def iter_tokens(self, page_size: int = 100) -> AsyncIterator[APIToken]:
        """Every token, following ``next`` from page to page (one request per page)."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor)
            for token in page.results:
                yield token
            if page.next is None:
                return
            cursor = page.next

    async def get(self, id: str) -> APIToken:
        """The token with this id (``"self"`` allowed); `NotFound` if there is none."""
        return token_of(await self._send(calls.get_call(id)))

    async def self_token(self) -> APIToken:
        """The token this client authenticates with."""
        return await self.get("self")

    async def create(
        self,
        name: str,
        permissions: Sequence[str],
        allowed_cidr_blocks: Sequence[str] | None = None,
        expires_at: Expiry = None,
    ) -> APIToken:
        """Create a token, returned with its ``value``; see `Client.create`."""
        call = calls.create_call(name, permissions, allowed_cidr_blocks, expires_at)
        return token_of(await self._send(call))

    async def update(
        self,
        id: str,
        name: str,
        permissions: Sequence[str],
        allowed_cidr_blocks: Sequence[str] | None = None,
        expires_at: Expiry | Unset = UNSET,
    ) -> APIToken:
        """Replace name and permissions; None blocks keep the current ones. See `Client.update`."""
        call = calls.update_call(id, name, permissions, allowed_cidr_blocks, expires_at)
        return token_of(await self._send(call))

    async def rotate(self, id: str, grace_period_seconds: int | None = None) -> APIToken:
        """Issue a new value; see `Client.rotate`. Never retried."""
        return token_of(await self._send(calls.rotate_call(id, grace_period_seconds)))

    async def delete(self, id: str) -> None:
        """Delete a token; see `Client.delete`."""
        await self._send(calls.delete_call(id))

    async def _send(self, call: Call) -> httpx.Response:
        attempts = self._policy.attempts(call)
        for attempt in range(attempts):
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params, json=call.body
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise connection_failed(self._base_url, call, exc) from exc
                await asyncio.sleep(self._policy.delay(attempt))
            else:
                return checked(response)
        raise AssertionError("unreachable")
