"""``POST /leaked-values``: anyone may report a leaked value (extension)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from apitokens.http.render import json_response
from apitokens.http.schemas import ErrorBody
from apitokens.http.security import ServicesDep, address_of, services_of

router = APIRouter(tags=["leaked values"])

RECEIVED = {"message": "report received; a valid value is revoked at once"}


class LeakedValue(BaseModel):
    """A value found where it should not be. Other fields are ignored (a misspelt
    ``value`` still fails: it is required)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    value: str = Field(description="The token value that leaked")


class Received(BaseModel):
    message: str


def reporter_ip(request: Request) -> str | None:
    """Count the report against the reporter's address before the body is even parsed."""
    services = services_of(request)
    address = address_of(request, services)
    ip = str(address) if address is not None else None
    services.leaks.admit(ip)
    request.state.client_ip = ip
    return ip


@router.post(
    "/leaked-values",
    operation_id="leaked_value_report",
    summary="Report a leaked token value",
    status_code=202,
    response_model=Received,
    responses={
        400: {"model": ErrorBody, "description": 'The body is not {"value": "..."}'},
        413: {"model": ErrorBody, "description": "Request body over the size limit"},
        429: {"model": ErrorBody, "description": "Too many reports from this address"},
        503: {"model": ErrorBody, "description": "The token database is unavailable"},
    },
)
def report_leaked_value(
    services: ServicesDep,
    ip: Annotated[str | None, Depends(reporter_ip)],
    body: LeakedValue,
) -> Response:
    """No authentication. Always 202 with the same body, whether the value worked, is
    unknown or is not a value at all; a working value's token is revoked before the
    answer."""
    services.leaks.report(body.value, ip)
    return json_response(RECEIVED, 202)
