"""Audit events: who did what to which token, from where, and when. Never a value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apitokens.domain.tokens import Actor

CREATE = "token.create"
UPDATE = "token.update"
ROTATE = "token.rotate"
DELETE = "token.delete"
AUTH_FAILURE_BURST = "auth.failure_burst"
ROTATED_VALUE_USED = "auth.rotated_value_used"
LEAK_REPORTED = "token.leak_reported"
REFUSED = "authz.refused"
ADDRESS_REFUSED = "auth.address_refused"

ACTIONS = (
    CREATE,
    UPDATE,
    ROTATE,
    DELETE,
    AUTH_FAILURE_BURST,
    ROTATED_VALUE_USED,
    LEAK_REPORTED,
    REFUSED,
    ADDRESS_REFUSED,
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    action: str
    token_id: str | None
    actor: Actor | None
    client_ip: str | None
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
