"""The upstream API Tokens operations, at the upstream paths."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apitokens.domain import validation
from apitokens.domain.tokens import TokenSpec
from apitokens.http.render import page_response, token_body, token_response
from apitokens.http.schemas import APIToken, ErrorBody, ListResp, ModifyAPIToken
from apitokens.http.security import (
    CurrentPrincipal,
    ServicesDep,
    admit,
    api_key_of,
    cached_principal,
    principal_for,
    services_of,
)
from apitokens.service.tokens import SELF
from apitokens.wiring import Services

router = APIRouter(prefix="/api-tokens", tags=["api token"])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "Bad request: the message names the field",
        401: "Missing, malformed, unknown, revoked or expired API key",
        403: "The API key lacks a permission or is used from a disallowed address",
        404: "No token with that id",
        413: "Request body over the size limit",
        429: "Too many failed authentications from this address (see Retry-After)",
        503: "The token database is unavailable",
    }
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}


TokenId = Annotated[
    str,
    Path(description="ID of the api token. If `self` is provided, the calling token is used"),
]


def _spec(services: Services, body: ModifyAPIToken) -> TokenSpec:
    given = body.model_fields_set
    return validation.build_spec(
        services.catalog,
        body.name,
        body.permissions,
        body.allowedCIDRBlocks,
        body.expiresAt,
        "expiresAt" in given,
        body.servicePermissions,
    )


@router.get(
    "",
    operation_id="api_token_list",
    summary="List api tokens",
    response_model=ListResp,
    responses=_errors(400, 401, 403, 429, 503),
)
def list_tokens(
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Annotated[int | None, Query(description="Page size, 1 to 1000 (default 100)")] = None,
    cursor: Annotated[str | None, Query(description="The `next` of the previous page")] = None,
) -> Response:
    """List tokens, newest first, one page at a time."""
    page = services.tokens.list(principal, limit, cursor)
    return page_response((token_body(token) for token in page.tokens), page.next)


@router.post(
    "",
    operation_id="api_token_create",
    summary="Create an api token",
    response_model=APIToken,
    responses=_errors(400, 401, 403, 413, 429, 503),
)
def create_token(
    principal: CurrentPrincipal, services: ServicesDep, body: ModifyAPIToken
) -> Response:
    """Create a token; the response carries its value, shown this once."""
    issued = services.tokens.create(principal.actor, _spec(services, body), principal)
    return token_response(issued.token, issued.value)


async def get_self(request: Request) -> Response:
    """``GET /api-tokens/self``, the hot path: what ``get_token`` answers for ``self``.

    A plain Starlette endpoint registered ahead of ``/{id}``: FastAPI's per-request
    dependency solving costs more than authenticating from memory does. It is logged and
    counted as the route it is, ``/api-tokens/self``; the document describes it under
    ``/api-tokens/{id}`` (``id`` = ``self``), which answers the same.
    """
    request.scope["route"] = _self_route  # it is this route, however it was reached
    services = services_of(request)
    principal = await principal_for(request, api_key_of(request), services)
    return token_response(services.tokens.get(principal, SELF))


def get_self_now(request: Request) -> Response | None:
    """``get_self`` when its answer is ready at once (``http.hotpaths``): a value known in
    memory and admitted. None otherwise (a value to look up, any refusal), with nothing
    recorded."""
    services = services_of(request)
    principal = cached_principal(request, api_key_of(request), services)
    if principal is None:
        return None
    request.scope["route"] = _self_route
    admit(request, principal, services)
    return token_response(services.tokens.get(principal, SELF))


_self_route = Route(f"{router.prefix}/{SELF}", get_self, methods=["GET"], include_in_schema=False)
# GET, and HEAD as Starlette adds it for a GET route (the answer without its body), as
# this route has always answered; the hot path (http.hotpaths) takes GET only.
router.routes.append(_self_route)


@router.get(
    "/{id}",
    operation_id="api_token_get",
    summary="Get an api token",
    response_model=APIToken,
    responses=_errors(401, 403, 404, 429, 503),
)
async def get_token(principal: CurrentPrincipal, services: ServicesDep, id: TokenId) -> Response:
    """Get one token; `self` is always allowed to read itself."""
    if id in (SELF, principal.token.id):  # from memory: no thread hop
        return token_response(services.tokens.get(principal, id))
    token = await run_in_threadpool(services.tokens.get, principal, id)
    return token_response(token)


@router.post(
    "/{id}",
    operation_id="api_token_update",
    summary="Update an api token",
    response_model=APIToken,
    responses=_errors(400, 401, 403, 404, 413, 429, 503),
)
def update_token(
    principal: CurrentPrincipal, services: ServicesDep, id: TokenId, body: ModifyAPIToken
) -> Response:
    """Replace name and permissions; omitted allowedCIDRBlocks (or servicePermissions)
    keeps the current ones."""
    return token_response(services.tokens.update(principal, id, _spec(services, body)))


@router.delete(
    "/{id}",
    operation_id="api_token_delete",
    summary="Delete an api token",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404, 429, 503),
)
def delete_token(principal: CurrentPrincipal, services: ServicesDep, id: TokenId) -> Response:
    """Delete a token; it stops authenticating at once. `self` may always delete itself."""
    services.tokens.delete(principal, id)
    return Response(status_code=204)


@router.post(
    "/{id}/rotate",
    operation_id="api_token_rotate",
    summary="Rotate an api token",
    response_model=APIToken,
    responses=_errors(400, 401, 403, 404, 429, 503),
)
def rotate_token(
    principal: CurrentPrincipal,
    services: ServicesDep,
    id: TokenId,
    gracePeriodSeconds: Annotated[
        int | None,
        Query(description="Extension: keep the previous value valid this long (max 604800)"),
    ] = None,
) -> Response:
    """Issue a new value; the old one stops working (after the grace period, if any)."""
    issued = services.tokens.rotate(principal, id, gracePeriodSeconds)
    return token_response(issued.token, issued.value)
