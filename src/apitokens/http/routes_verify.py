"""``/verify``: lets a reverse proxy (nginx ``auth_request``, Traefik ``forwardAuth``)
protect another HTTP service with these tokens (extension)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from apitokens.domain import verification
from apitokens.domain.authorization import Action, authorize
from apitokens.domain.tokens import Token
from apitokens.http.schemas import ErrorBody
from apitokens.http.security import ServicesDep, api_key_header, principal_for

router = APIRouter(tags=["verify"])

bearer = HTTPBearer(
    auto_error=False,
    description="Alternative to X-API-Key: `Authorization: Bearer <token value>`",
)

# Traefik forwardAuth forwards the original method; nginx auth_request always sends GET.
OTHER_METHODS = ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Header values must be printable ASCII: anything else in a token name is percent-encoded
# (UTF-8), and so is "%" itself, so that unquoting always gives the name back.
_HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")

_REASONS = {
    204: "The token is valid here; identity in X-Token-Id, X-Token-Name, X-Token-Permissions",
    400: "A required permission is not in the catalog (a proxy configuration error)",
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


def identity_headers(token: Token) -> dict[str, str]:
    return {
        "X-Token-Id": token.id,
        "X-Token-Name": header_text(token.name),
        "X-Token-Permissions": ",".join(token.permissions),
        "Cache-Control": "no-store",
    }


@router.api_route("/verify", methods=OTHER_METHODS, include_in_schema=False)
@router.get(
    "/verify",
    operation_id="verify",
    summary="Verify a token for a reverse proxy",
    status_code=204,
    response_class=Response,
    responses=_documented(),
)
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
        list[str] | None,
        Header(description="Required permission, as a header the proxy sets (all needed)"),
    ] = None,
) -> Response:
    """204 when the token is valid from the client's address and holds every required
    permission; any method is accepted. The address is the TCP peer, or X-Forwarded-For
    when the peer is a trusted proxy."""
    required = verification.required_permissions(
        services.catalog, [*(permission or ()), *(x_required_permission or ())]
    )
    principal = await principal_for(request, presented_value(api_key, bearer_credentials))
    authorize(principal, Action.VERIFY, required=required)
    return Response(status_code=204, headers=identity_headers(principal.token))
