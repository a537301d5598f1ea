"""Webhooks and per-token daily usage (extensions)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.events import EVENT_TYPES, Delivery, Webhook
from apitokens.http.render import json_response, page_response, rfc3339
from apitokens.http.schemas import ErrorBody
from apitokens.http.security import CurrentPrincipal, ServicesDep

router = APIRouter(tags=["webhooks"])

_FIELDS = ("url", "events", "description")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


_PORT = "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:{_PORT})?([/?#][!-~]*)?$"


class WebhookIn(BaseModel):
    """The body of ``POST /webhooks``. Unknown fields are refused (named in the 400)."""

    model_config = ConfigDict(
        extra="allow", strict=True, json_schema_extra={"additionalProperties": False}
    )

    url: str = Field(
        description="Where to POST events: an absolute public http:// or https:// URL",
        max_length=2048,
        # Documented, not enforced here: the service accepts more (IPv6 literals, any
        # port); every URL this pattern matches is accepted where private addresses are.
        json_schema_extra={"pattern": _URL_PATTERN},
    )
    events: list[str] | None = Field(
        default=None,
        description="Event types to send; all when omitted: " + ", ".join(EVENT_TYPES),
        json_schema_extra={
            "minItems": 1,
            "items": {"type": "string", "enum": list(EVENT_TYPES)},
        },
    )
    description: str = Field(
        default="",
        description="Free text, at most 256 characters",
        json_schema_extra={"maxLength": 256},
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    createdAt: str
    secret: str | None = Field(
        default=None, description="`whsec_...`: only in the response of create, shown once"
    )


class WebhookList(BaseModel):
    results: list[WebhookOut]
    next: str | None = None


class DeliveryOut(BaseModel):
    id: str = Field(description="The `webhook-id` header of this delivery")
    event: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    lastStatusCode: int | None
    nextAttemptAt: str | None
    deliveredAt: str | None


class DeliveryList(BaseModel):
    results: list[DeliveryOut]
    next: str | None = None


class UsageDay(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD")
    requests: int


class UsageList(BaseModel):
    results: list[UsageDay]


def webhook_body(webhook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "createdAt": rfc3339(webhook.created_at),
    }
    if with_secret:
        body["secret"] = webhook.secret
    return body


def delivery_body(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "lastStatusCode": delivery.last_status_code,
        "nextAttemptAt": rfc3339(delivery.next_attempt_at),
        "deliveredAt": rfc3339(delivery.delivered_at),
    }


WebhookId = Annotated[str, Path(description="The webhook's id")]
Limit = Annotated[int | None, Query(description="Page size, 1 to 1000 (default 100)")]
Cursor = Annotated[str | None, Query(description="The `next` of the previous page")]


@router.post(
    "/webhooks",
    operation_id="webhook_create",
    summary="Register a webhook",
    response_model=WebhookOut,
    responses=_errors(400, 401, 403, 413, 429, 503),
)
def create_webhook(principal: CurrentPrincipal, services: ServicesDep, body: WebhookIn) -> Response:
    """Register a receiver of token events; the answer holds its signing secret, once."""
    unknown = sorted(body.model_extra or {})
    if unknown:
        raise ValidationFailed(unknown[0], f"unknown field (accepted fields: {', '.join(_FIELDS)})")
    webhook = services.lifecycle.webhooks.create(principal, body.url, body.events, body.description)
    return json_response(
        webhook_body(webhook, with_secret=True), headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/webhooks",
    operation_id="webhook_list",
    summary="List webhooks",
    response_model=WebhookList,
    responses=_errors(400, 401, 403, 429, 503),
)
def list_webhooks(
    principal: CurrentPrincipal, services: ServicesDep, limit: Limit = None, cursor: Cursor = None
) -> Response:
    """Webhooks, newest first (never their secrets)."""
    page = services.lifecycle.webhooks.page(principal, limit, cursor)
    return page_response((webhook_body(hook) for hook in page.webhooks), page.next)


@router.delete(
    "/webhooks/{id}",
    operation_id="webhook_delete",
    summary="Delete a webhook",
    status_code=204,
    response_class=Response,
    responses=_errors(401, 403, 404, 429, 503),
)
def delete_webhook(principal: CurrentPrincipal, services: ServicesDep, id: WebhookId) -> Response:
    """Delete a webhook; its undelivered events are dropped."""
    services.lifecycle.webhooks.delete(principal, id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{id}/deliveries",
    operation_id="webhook_deliveries",
    summary="List a webhook's deliveries",
    response_model=DeliveryList,
    responses=_errors(400, 401, 403, 404, 429, 503),
)
def list_deliveries(
    principal: CurrentPrincipal,
    services: ServicesDep,
    id: WebhookId,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Response:
    """Deliveries of one webhook, newest first."""
    page = services.lifecycle.webhooks.deliveries(principal, id, limit, cursor)
    return page_response((delivery_body(item) for item in page.deliveries), page.next)


@router.get(
    "/api-tokens/{id}/usage",
    operation_id="api_token_usage",
    summary="Daily usage of an api token",
    response_model=UsageList,
    responses=_errors(400, 401, 403, 404, 429, 503),
    tags=["api token"],
)
def token_usage(
    principal: CurrentPrincipal,
    services: ServicesDep,
    id: Annotated[str, Path(description="Token id, or `self`")],
    days: Annotated[int | None, Query(description="1 to 90 (default 30)", ge=1, le=90)] = None,
) -> Response:
    """Successful authentications per UTC day, oldest first, days without use as 0."""
    days_used = services.lifecycle.usage_report.daily(principal, id, days)
    results = [{"date": day.isoformat(), "requests": count} for day, count in days_used]
    return json_response({"results": results})
