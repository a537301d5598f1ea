"""Webhooks: registering receivers, and the background sender that delivers the outbox.

Deliveries follow the Standard Webhooks specification: ``webhook-id`` (the delivery's id,
the same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
base64-decoded secret, signed by the ``standardwebhooks`` package itself.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
from standardwebhooks.webhooks import Webhook as Signer

from apitokens import __version__
from apitokens.domain import audit
from apitokens.domain.audit import AuditEvent
from apitokens.domain.authorization import Action, authorize
from apitokens.domain.clock import Clock, SystemClock
from apitokens.domain.errors import NotFound, ValidationFailed
from apitokens.domain.events import (
    DELIVERED,
    EVENT_TYPES,
    FAILED,
    SECRET_PREFIX,
    Delivery,
    Webhook,
)
from apitokens.domain.tokens import Principal
from apitokens.service.destinations import Destinations
from apitokens.service.pagination import check_limit, decode_position, encode_position
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.webhooks")

MAX_WEBHOOKS = 100
MAX_DESCRIPTION = 256
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class WebhookPage:
    webhooks: Sequence[Webhook]
    next: str | None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: Sequence[Delivery]
    next: str | None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_events(requested: Sequence[object] | None) -> tuple[str, ...]:
    """The event names a webhook wants, in catalog order; all of them when not given."""
    if requested is None:
        return EVENT_TYPES
    unknown = [str(name) for name in requested if name not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            "events",
            f"unknown event {', '.join(unknown)}; accepted: {', '.join(EVENT_TYPES)}",
        )
    if not requested:
        raise ValidationFailed("events", "give at least one event, or leave it out for all")
    return tuple(name for name in EVENT_TYPES if name in requested)


class WebhookService:
    def __init__(self, store: Store, clock: Clock, destinations: Destinations) -> None:
        self.store = store
        self.clock = clock
        self.destinations = destinations

    def create(
        self,
        principal: Principal,
        url: str,
        events: Sequence[str] | None,
        description: str,
    ) -> Webhook:
        """Register a receiver; the returned webhook carries its secret (shown once).

        Needs OrganizationAPITokenModify, and OrganizationAPITokenRead too: the receiver
        will be sent every token's metadata, which is what Read shows. Raises
        ValidationFailed (400) for a bad or non-public URL, unknown events, a description
        over 256 characters, or when 100 webhooks exist already.
        """
        authorize(principal, Action.REGISTER_WEBHOOK)
        wanted = check_events(events)
        if len(description) > MAX_DESCRIPTION:
            raise ValidationFailed("description", f"longer than {MAX_DESCRIPTION} characters")
        checked = self.destinations.check(url)  # resolves the host: before the transaction
        now = self.clock.now()
        webhook = Webhook(
            id=str(uuid.uuid4()),
            url=checked,
            events=wanted,
            description=description,
            created_at=now,
            created_by=principal.actor,
            secret=new_secret(),
        )
        with self.store.unit(write=True) as unit:
            if unit.webhooks.count() >= MAX_WEBHOOKS:
                raise ValidationFailed("", f"at most {MAX_WEBHOOKS} webhooks; delete one first")
            unit.webhooks.add(webhook)
            detail = {"webhookId": webhook.id, "url": webhook.url, "events": list(wanted)}
            unit.audit.add(
                AuditEvent(
                    audit.WEBHOOK_CREATE, None, principal.actor, principal.client_ip, now, detail
                )
            )
        log.info("webhook created", extra={"webhook_id": webhook.id})
        return webhook

    def page(self, principal: Principal, limit: int | None, cursor: str | None) -> WebhookPage:
        """Webhooks, newest first; needs OrganizationAPITokenRead."""
        authorize(principal, Action.READ_WEBHOOKS)
        size = check_limit(limit)
        after = decode_position(cursor)
        with self.store.unit() as unit:
            found = unit.webhooks.page(size + 1, after)
        more = len(found) > size
        found = found[:size]
        last = found[-1] if more else None
        return WebhookPage(found, encode_position((last.created_at, last.id)) if last else None)

    def delete(self, principal: Principal, webhook_id: str) -> None:
        """Remove a webhook and its pending deliveries. Raises NotFound (404)."""
        authorize(principal, Action.DELETE_WEBHOOK)
        now = self.clock.now()
        with self.store.unit(write=True) as unit:
            webhook = unit.webhooks.find(webhook_id)
            if webhook is None or not unit.webhooks.delete(webhook.id):
                raise NotFound("no webhook with that id")
            detail = {"webhookId": webhook.id, "url": webhook.url}
            unit.audit.add(
                AuditEvent(
                    audit.WEBHOOK_DELETE, None, principal.actor, principal.client_ip, now, detail
                )
            )
        log.info("webhook deleted", extra={"webhook_id": webhook_id})

    def deliveries(
        self, principal: Principal, webhook_id: str, limit: int | None, cursor: str | None
    ) -> DeliveryPage:
        """A webhook's deliveries, newest first; needs Read. Raises NotFound (404)."""
        authorize(principal, Action.READ_WEBHOOKS)
        size = check_limit(limit)
        after = decode_position(cursor)
        with self.store.unit() as unit:
            if unit.webhooks.find(webhook_id) is None:
                raise NotFound("no webhook with that id")
            found = unit.outbox.page(webhook_id, size + 1, after)
        more = len(found) > size
        found = found[:size]
        last = found[-1] if more else None
        return DeliveryPage(found, encode_position((last.created_at, last.id)) if last else None)


class Sender:
    """Delivers due outbox rows; ``run_once`` is one pass, called by a background loop.

    A pass claims up to ``batch`` due deliveries (leasing them, so another instance skips
    them), sends them in parallel threads without holding a transaction, then records each
    outcome: delivered on a 2xx, otherwise the next attempt after the retry schedule's
    next delay, or failed when it is used up. A crash between sending and recording sends
    again after the lease: delivery is at least once.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        destinations: Destinations,
        *,
        timeout_seconds: float,
        retry_seconds: Sequence[int],
        batch: int = 8,
        stamp_clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.destinations = destinations
        self.retry_seconds = tuple(retry_seconds)
        self.batch = batch
        # The signature's timestamp is the receiver's replay guard: always the real time.
        self.stamp_clock = stamp_clock or SystemClock()
        # Every phase (connect, write, read, pool) is bounded; a lease covers them all.
        self.lease = timedelta(seconds=4 * timeout_seconds + 30)
        self._timeout = timeout_seconds
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._closed = False

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, made at the first delivery: making one loads the system's
        certificates (17 ms), and most services never send a webhook."""
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self._timeout),
                    follow_redirects=False,
                    trust_env=False,  # a proxy would connect elsewhere than the address checked
                    transport=self._transport,
                    headers={"user-agent": f"apitokens-webhooks/{__version__}"},
                )
                if self._closed:  # closed stays closed
                    self._client.close()
            return self._client

    def run_once(self) -> int:
        """Send what is due now; return how many deliveries were attempted."""
        now = self.clock.now()
        with self.store.unit() as unit:
            if not unit.outbox.has_due(now):
                return 0
        with self.store.unit(write=True) as unit:
            claimed = unit.outbox.claim(now, self.batch, now + self.lease)
            hooks = {d.webhook_id: unit.webhooks.find(d.webhook_id) for d in claimed}
        if not claimed:
            return 0
        with ThreadPoolExecutor(max_workers=len(claimed)) as pool:
            outcomes = list(pool.map(lambda d: self._attempt(d, hooks.get(d.webhook_id)), claimed))
        with self.store.unit(write=True) as unit:
            for outcome in outcomes:
                unit.outbox.save(outcome)
        return len(claimed)

    def close(self) -> None:
        with self._client_lock:
            self._closed = True
            if self._client is not None:
                self._client.close()

    def _attempt(self, delivery: Delivery, webhook: Webhook | None) -> Delivery:
        status = self._post(delivery, webhook) if webhook else None
        attempts = delivery.attempts + 1
        now = self.clock.now()
        if status is not None and 200 <= status < 300:
            log.info("webhook delivered", extra=_fields(delivery, attempts, status))
            return replace(
                delivery,
                status=DELIVERED,
                attempts=attempts,
                last_status_code=status,
                delivered_at=now,
                next_attempt_at=None,
            )
        retry = attempts <= len(self.retry_seconds)
        next_at = now + timedelta(seconds=self.retry_seconds[attempts - 1]) if retry else None
        log.warning(
            "webhook delivery failed; will retry" if retry else "webhook delivery failed",
            extra=_fields(delivery, attempts, status),
        )
        return replace(
            delivery,
            status=delivery.status if retry else FAILED,
            attempts=attempts,
            last_status_code=status,
            next_attempt_at=next_at,
        )

    def _post(self, delivery: Delivery, webhook: Webhook) -> int | None:
        """The receiver's status code, or None when it could not be reached in time."""
        try:
            target = self.destinations.pin(webhook.url)
            stamp = self.stamp_clock.now()
            signature = Signer(webhook.secret).sign(delivery.id, stamp, delivery.body)
            headers = {
                **target.headers,
                "content-type": "application/json",
                "webhook-id": delivery.id,
                "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": signature,
            }
            # Streamed and closed unread: a receiver's answer body is never loaded.
            with self.client.stream(
                "POST",
                target.url,
                content=delivery.body.encode(),
                headers=headers,
                extensions=target.extensions,
            ) as response:
                return response.status_code
        except (httpx.HTTPError, ValidationFailed, OSError) as error:
            log.info(
                "webhook receiver not reached",
                extra={"delivery_id": delivery.id, "error": type(error).__name__},
            )
            return None


def _fields(delivery: Delivery, attempts: int, status: int | None) -> dict[str, object]:
    return {
        "delivery_id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "attempts": attempts,
        "status_code": status,
    }
