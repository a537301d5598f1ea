"""Reading the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apitokens.domain.audit import ACTIONS, AuditEvent
from apitokens.domain.authorization import Action, authorize
from apitokens.domain.errors import ValidationFailed
from apitokens.domain.tokens import Principal
from apitokens.service.pagination import check_limit, decode_event_cursor, encode_event_cursor
from apitokens.storage.port import Store


@dataclass(frozen=True, slots=True)
class EventPage:
    events: Sequence[AuditEvent]
    next: str | None


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self.store = store

    def page(
        self,
        principal: Principal,
        limit: int | None,
        cursor: str | None,
        token_id: str | None,
        action: str | None,
    ) -> EventPage:
        """Events newest first; needs OrganizationAPITokenRead."""
        authorize(principal, Action.READ_AUDIT)
        if action is not None and action not in ACTIONS:
            raise ValidationFailed("action", f"unknown action; accepted: {', '.join(ACTIONS)}")
        size = check_limit(limit)
        before = decode_event_cursor(cursor)
        with self.store.unit() as unit:
            events = unit.audit.page(size + 1, before, token_id, action)
        more = len(events) > size
        events = events[:size]
        last = events[-1].id if more and events else None
        return EventPage(events, encode_event_cursor(last) if last is not None else None)
