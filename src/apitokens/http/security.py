"""The ``X-API-Key`` dependency: who is calling, from where."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from apitokens.domain.network import IPAddress, client_address
from apitokens.domain.tokens import Principal
from apitokens.http.state import Runtime

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API token value, as returned by create or rotate",
)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def address_of(request: Request, trusted: Runtime) -> IPAddress | None:
    peer = request.client.host if request.client else None
    return client_address(
        peer, request.headers.getlist("x-forwarded-for"), trusted.settings.trusted_proxies
    )


async def authenticate(
    request: Request, api_key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    """Authenticate from memory when possible; ask the database (off the loop) otherwise."""
    return await principal_for(request, api_key)


async def principal_for(request: Request, presented: str | None) -> Principal:
    """The Principal for a presented value, from this request's client address."""
    state = runtime(request)
    address = address_of(request, state)
    principal = state.auth.from_memory(presented, address)
    if principal is None:
        principal = await run_in_threadpool(state.auth.authenticate, presented, address)
    request.state.token_id = principal.token.id
    request.state.client_ip = principal.client_ip
    return principal


async def _runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a
    # round trip through another thread on every request that asks for the Runtime.
    return runtime(request)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
