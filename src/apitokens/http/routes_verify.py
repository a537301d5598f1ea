"""``/verify``: lets a reverse proxy (nginx ``auth_request``, Traefik ``forwardAuth``)
protect another HTTP service with these tokens (extension)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import QueryParams
from starlette.responses import Response

from apitokens.domain import verification
from apitokens.domain.authorization import Action, authorize
from apitokens.domain.errors import ValidationFailed
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.tokens import Token
from apitokens.http.kept import Kept
from apitokens.http.render import Rendered
from apitokens.http.schemas import ErrorBody
from apitokens.http.security import (
    ServicesDep,
    admit,
    api_key_header,
    api_key_of,
    cached_principal,
    principal_for,
    services_of,
)

router = APIRouter(tags=["verify"])

bearer = HTTPBearer(
    auto_error=False,
    description="Alternative to X-API-Key: `Authorization: Bearer <token value>`",
)

# Header values must be printable ASCII: anything else in a token name is percent-encoded
# (UTF-8), and so is "%" itself, so that unquoting always gives the name back.
_HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")

_REASONS = {
    204: "The token is valid here; identity in X-Token-Id, X-Token-Name, X-Token-Permissions",
    400: (
        "A proxy configuration error: a required permission that is empty or not in the "
        "catalog, or a query parameter or X-Required-* header /verify does not know"
    ),
    401: "Missing, malformed, unknown, revoked or expired API key",
    403: "The token lacks a required permission or is used from a disallowed address",
    429: "Too many failed authentications from this address (see Retry-After)",
    503: "The token database is unavailable",
}


def _documented() -> dict[int | str, dict[str, Any]]:
    documented: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": text} for code, text in _REASONS.items()
    }
    documented[204] = {"description": _REASONS[204]}
    return documented


def presented_value(
    api_key: str | None, bearer_credentials: HTTPAuthorizationCredentials | None
) -> str | None:
    """``X-API-Key`` when sent, else the credentials of ``Authorization: Bearer``."""
    if api_key:
        return api_key
    return bearer_credentials.credentials if bearer_credentials else None


def header_text(text: str) -> str:
    return quote(text, safe=_HEADER_SAFE)


_identities: Kept[str, list[tuple[bytes, bytes]]] = Kept(16384)
"""The identity headers' bytes, by token id, while its name and permissions stay."""


def _identity_raw_headers(token: Token) -> list[tuple[bytes, bytes]]:
    return Response(status_code=204, headers=identity_headers(token)).raw_headers


def identity_response(token: Token) -> Response:
    """The 204 that tells the proxy who the caller is: ``Response(status_code=204,
    headers=identity_headers(token))``, with the header bytes kept per token."""
    stamp = (token.name, token.permissions)
    return Rendered(b"", 204, _identities.get(token.id, stamp, _identity_raw_headers, token))


def identity_headers(token: Token) -> dict[str, str]:
    return {
        "X-Token-Id": token.id,
        "X-Token-Name": header_text(token.name),
        "X-Token-Permissions": ",".join(token.permissions),
        "Cache-Control": "no-store",
    }


async def verify(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
    bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    permission: Annotated[
        list[str] | None,
        Query(description="Required permission; repeat it or separate with commas (all needed)"),
    ] = None,
    x_required_permission: Annotated[
        str | None,
        Header(description="Required permission(s), comma-separated, as a header the proxy sets"),
    ] = None,
) -> Response:
    """204 when the token is valid from the client's address and holds every required
    permission. The address is the TCP peer, or X-Forwarded-For when the peer is a trusted
    proxy. Fails closed: a query parameter other than `permission`, an `X-Required-*`
    header other than `X-Required-Permission`, an empty requirement (an unset proxy
    variable) or an unknown permission name is a 400, before the key is even looked at."""
    return await _verify(request, services.catalog, presented_value(api_key, bearer_credentials))


async def _verify(request: Request, catalog: PermissionCatalog, value: str | None) -> Response:
    required = verification.required_permissions(catalog, requirements(request))
    principal = await principal_for(request, value)
    authorize(principal, Action.VERIFY, required=required)
    return identity_response(principal.token)


def requirements(request: Request) -> list[str]:
    """The permission names a request asks for, each checked to be there; 400 otherwise."""
    unknown, asked = _query(request.scope["query_string"])
    if unknown:
        raise ValidationFailed(
            "query", f"unknown parameter(s) {', '.join(map(repr, unknown))}; only {QUERY!r} is"
        )
    # The headers straight from the scope, without building request.headers on every
    # request. Names are compared in lower case: servers send them so, but ASGI allows
    # either, and a requirement must never be missed because of its spelling.
    headers: set[str] = set()
    header_values: list[str] = []
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.lower()
        if name.startswith(b"x-required-"):
            if name == _HEADER_RAW:
                header_values.append(raw_value.decode("latin-1"))
            else:
                headers.add(name.decode("latin-1"))
    if headers:
        raise ValidationFailed(
            "headers", f"unknown header(s) {', '.join(sorted(headers))}; only {HEADER} is read"
        )
    names: list[str] = []
    for field, values in ((QUERY, asked), (HEADER, header_values)):
        for value in values:
            parts = [part.strip(" \t") for part in value.split(",")]
            if not all(parts):
                raise ValidationFailed(
                    field, "must name a permission; an empty one is a configuration error"
                )
            names += parts
    return names


_CACHED_QUERY_BYTES = 256
"""Query strings up to this long have their parse kept (a proxy sends the same one again
and again); longer ones, which no proxy configuration needs, are parsed each time."""
_queries: Kept[bytes, tuple[str, ...]] = Kept(1024)


def _query(query_string: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The unknown parameter names (sorted) and the ``permission`` values of a query.

    A query of nothing but ``permission`` values is kept (bounded), so its parse is not
    repeated; any other query (a refusal, or something a proxy was never configured to
    send, such as a value put where it does not belong) is parsed and forgotten."""
    kept = _queries.find(query_string)
    if kept is not None:
        return (), kept
    params = QueryParams(query_string)  # exactly request.query_params
    unknown = tuple(sorted({name for name in params if name != QUERY}))
    asked = tuple(params.getlist(QUERY))
    if not unknown and len(query_string) <= _CACHED_QUERY_BYTES:
        _queries.put(query_string, None, asked)
    return unknown, asked


QUERY = "permission"
HEADER = "X-Required-Permission"
_HEADER_RAW = HEADER.lower().encode("latin-1")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""Traefik forwardAuth and Envoy ext_authz forward the original method; nginx sends GET.
Each is declared in the document; any other method is a 405 naming these."""

for _method in METHODS:
    router.add_api_route(
        "/verify",
        verify,
        methods=[_method],
        operation_id="verify" if _method == "GET" else f"verify_{_method.lower()}",
        summary="Verify a token for a reverse proxy"
        + ("" if _method == "GET" else f" ({_method}, as a proxy forwards it)"),
        status_code=204,
        response_class=Response,
        responses=_documented(),
    )


_GET_ROUTE = next(
    route
    for route in router.routes
    if getattr(route, "endpoint", None) is verify and "GET" in getattr(route, "methods", ())
)


async def verify_get(request: Request) -> Response:
    """``GET /verify`` without FastAPI's dependency solving (``http.hotpaths``): the same
    inputs read the same way as the parameters of ``verify``, the same answer, and the
    route it is (``GET /verify``) for the access log and the metrics."""
    request.scope["route"] = _GET_ROUTE
    return await _verify(request, services_of(request).catalog, _presented(request))


def verify_get_now(request: Request) -> Response | None:
    """``verify_get`` when its answer is ready at once (``http.hotpaths``): a value known in
    memory that passes. None, or the exception ``verify_get`` would answer, otherwise (a
    value to look up, any refusal), before anything is recorded."""
    services = services_of(request)
    required = verification.required_permissions(services.catalog, requirements(request))
    principal = cached_principal(request, _presented(request), services)
    if principal is None:
        return None
    authorize(principal, Action.VERIFY, required=required)
    request.scope["route"] = _GET_ROUTE
    admit(request, principal, services)
    return identity_response(principal.token)


def _presented(request: Request) -> str | None:
    """``X-API-Key``, else the credentials of ``Authorization: Bearer`` (``presented_value``
    of the parameters ``verify`` declares)."""
    value = api_key_of(request)
    if not value:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        value = credentials if scheme.lower() == "bearer" and credentials else None
    return value
