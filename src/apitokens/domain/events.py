"""Lifecycle events and the webhooks that receive them (extension). Never a value.

An event is sent as the Standard Webhooks format: a JSON body
``{"type": <event>, "timestamp": <RFC 3339>, "data": {...}}`` signed with the webhook's
secret. One delivery is one event for one webhook; it keeps its id (``webhook-id``) and its
body bytes across retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from apitokens.domain.tokens import Actor

CREATED = "api_token.created"
UPDATED = "api_token.updated"
ROTATED = "api_token.rotated"
DELETED = "api_token.deleted"
LEAKED = "api_token.leaked"
ROTATED_VALUE_USED = "api_token.rotated_value_used"
EXPIRING = "api_token.expiring"
EXPIRED = "api_token.expired"

EVENT_TYPES = (
    CREATED,
    UPDATED,
    ROTATED,
    DELETED,
    LEAKED,
    ROTATED_VALUE_USED,
    EXPIRING,
    EXPIRED,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret prefix, not a secret


@dataclass(frozen=True, slots=True)
class Webhook:
    """A registered receiver. ``secret`` signs its deliveries; it is never rendered after
    the create response, and hidden from ``repr`` (so from logs and tracebacks)."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str
    created_at: datetime
    created_by: Actor | None
    secret: str = field(repr=False)

    def wants(self, event_type: str) -> bool:
        return event_type in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook: the outbox row the sender works from."""

    id: str
    webhook_id: str
    event: str
    body: str
    created_at: datetime
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    delivered_at: datetime | None = None
