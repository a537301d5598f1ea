"""Emitting lifecycle events: one outbox row per interested webhook, in the caller's unit.

An event is written in the same unit of work as the change it reports, so a committed
change always has its event and a rolled-back one never does. Sending is the sender's
business (``service/webhooks.py``), never the request's.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from apitokens.domain import audit, events
from apitokens.domain.audit import AuditEvent
from apitokens.domain.clock import Clock, to_millis
from apitokens.domain.events import Delivery
from apitokens.domain.tokens import Actor, Token
from apitokens.storage.port import UnitOfWork

RenderToken = Callable[[Token], dict[str, Any]]

ROTATED_VALUE_USED_INTERVAL = timedelta(minutes=1)
"""At most one ``api_token.rotated_value_used`` per token this often (per instance): a
client stuck on an old value must not flood the receivers (the audit trail has each use)."""


class EventSink(Protocol):
    def emit(
        self,
        unit: UnitOfWork,
        event_type: str,
        token: Token,
        actor: Actor | None = None,
        client_ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue ``event_type`` about ``token`` for every webhook that wants it."""

    def revoking(self, unit: UnitOfWork, token_id: str, event: AuditEvent) -> None:
        """Before a token is deleted in ``unit``: ``api_token.deleted`` or ``.leaked``."""

    def noticed(self, unit: UnitOfWork, event: AuditEvent) -> None:
        """An audit event noticed on the request path, now being written."""


class NoEvents:
    """The sink of a service built without webhooks (tests, the command line)."""

    def emit(
        self,
        unit: UnitOfWork,
        event_type: str,
        token: Token,
        actor: Actor | None = None,
        client_ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        return None

    def revoking(self, unit: UnitOfWork, token_id: str, event: AuditEvent) -> None:
        return None

    def noticed(self, unit: UnitOfWork, event: AuditEvent) -> None:
        return None


def message_id() -> str:
    """A delivery's ``webhook-id``: unique, the same on every retry, and starting with the
    time it was made (hex nanoseconds), so deliveries due at once go out oldest first."""
    return f"msg_{time.time_ns():016x}{secrets.token_hex(8)}"


def rfc3339(moment: datetime) -> str:
    return to_millis(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventOutbox:
    def __init__(self, clock: Clock, render_token: RenderToken) -> None:
        self.clock = clock
        self.render_token = render_token
        self._last_rotated_use: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def emit(
        self,
        unit: UnitOfWork,
        event_type: str,
        token: Token,
        actor: Actor | None = None,
        client_ip: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        hooks = [hook for hook in unit.webhooks.all() if hook.wants(event_type)]
        if not hooks:
            return
        now = self.clock.now()
        data: dict[str, Any] = {
            "token": self.render_token(token),  # never holds a value: tokens do not have one
            "actor": {"id": actor.id, "type": actor.type} if actor else None,
            "clientIP": client_ip,
            **(extra or {}),
        }
        body = json.dumps(
            {"type": event_type, "timestamp": rfc3339(now), "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for hook in hooks:
            unit.outbox.add(
                Delivery(
                    id=message_id(),
                    webhook_id=hook.id,
                    event=event_type,
                    body=body,
                    created_at=now,
                    next_attempt_at=now,
                )
            )

    def revoking(self, unit: UnitOfWork, token_id: str, event: AuditEvent) -> None:
        leaked = event.action == audit.LEAK_REPORTED
        wanted = events.LEAKED if leaked else events.DELETED
        if not any(hook.wants(wanted) for hook in unit.webhooks.all()):
            return  # no receiver: no need to read the token
        token = unit.tokens.find(token_id, lock=True)
        if token is None:
            return  # nothing will be deleted: nothing to tell
        if leaked:
            self.emit(unit, wanted, token, None, event.client_ip, {"revoked": True})
        else:
            self.emit(unit, wanted, token, event.actor, event.client_ip)

    def noticed(self, unit: UnitOfWork, event: AuditEvent) -> None:
        if event.action != audit.ROTATED_VALUE_USED or event.token_id is None:
            return
        with self._lock:
            last = self._last_rotated_use.get(event.token_id)
            if last is not None and event.at - last < ROTATED_VALUE_USED_INTERVAL:
                return
            if len(self._last_rotated_use) > 10_000:  # bounded: forget the quiet ones
                cutoff = event.at - ROTATED_VALUE_USED_INTERVAL
                self._last_rotated_use = {
                    key: at for key, at in self._last_rotated_use.items() if at > cutoff
                }
            self._last_rotated_use[event.token_id] = event.at
        token = unit.tokens.find(event.token_id)
        if token is not None:
            self.emit(unit, events.ROTATED_VALUE_USED, token, None, event.client_ip)
