"""The audit trail listing (extension)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from apitokens.domain.audit import ACTIONS
from apitokens.http.render import event_body, page_response
from apitokens.http.schemas import AuditList, ErrorBody
from apitokens.http.security import CurrentPrincipal, ServicesDep

router = APIRouter(tags=["audit"])


@router.get(
    "/audit-events",
    operation_id="audit_event_list",
    summary="List audit events",
    response_model=AuditList,
    responses={code: {"model": ErrorBody} for code in (400, 401, 403, 429, 503)},
)
def list_events(
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Annotated[int | None, Query(description="Page size, 1 to 1000")] = None,
    cursor: Annotated[str | None, Query()] = None,
    tokenId: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(description=", ".join(ACTIONS))] = None,
) -> Response:
    """Token operations and security events, newest first."""
    page = services.audit.page(principal, limit, cursor, tokenId, action)
    return page_response((event_body(event) for event in page.events), page.next)
