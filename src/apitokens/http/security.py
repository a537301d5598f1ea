"""The ``X-API-Key`` dependency: who is calling, from where."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from apitokens.domain.network import IPAddress, address_text, client_address
from apitokens.domain.tokens import Principal
from apitokens.wiring import Services

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API token value, as returned by create or rotate",
)


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def api_key_of(request: Request) -> str | None:
    """The ``X-API-Key`` header (the first one), read straight from the ASGI scope."""
    for name, value in request.scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def address_of(request: Request, services: Services) -> IPAddress | None:
    client = request.scope.get("client")
    trusted = services.settings.trusted_proxies
    # X-Forwarded-For counts only from a trusted proxy: without one, it is not even read.
    forwarded = request.headers.getlist("x-forwarded-for") if trusted else ()
    return client_address(client[0] if client else None, forwarded, trusted)


async def authenticate(
    request: Request, api_key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    """The calling token (``X-API-Key``), from this request's client address."""
    return await principal_for(request, api_key)


async def principal_for(
    request: Request, presented: str | None, services: Services | None = None
) -> Principal:
    """The Principal for a presented value, from this request's client address."""
    services = services or services_of(request)
    address = address_of(request, services)
    # The access line names the address authentication saw, refused or not. Written to
    # the scope's state, which ``request.state`` wraps, without making that wrapper.
    state = request.scope.setdefault("state", {})
    state["client_ip"] = address_text(address)
    principal = await services.auth.authenticate(presented, address)
    state["token_id"] = principal.token.id
    return principal


def cached_principal(
    request: Request, presented: str | None, services: Services
) -> Principal | None:
    """What ``principal_for`` returns at once for a value known in memory and admitted
    (``Authenticator.cached``); None otherwise. Records nothing until ``admit``."""
    return services.auth.cached(presented, address_of(request, services))


def admit(request: Request, principal: Principal, services: Services) -> None:
    """Record a principal of ``cached_principal`` as ``principal_for`` records its own: the
    access line's address and token id, the token's use."""
    state = request.scope.setdefault("state", {})
    state["client_ip"] = address_text(principal.address)
    state["token_id"] = principal.token.id
    services.auth.admit(principal)


async def _services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a
    # round trip through another thread on every request that asks for the services.
    return services_of(request)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
ServicesDep = Annotated[Services, Depends(_services)]
