"""Lifecycle events and usage, assembled: what the composition root adds for webhooks.

``build_lifecycle`` makes the parts from the settings; ``jobs`` are the background passes
(name, interval, callable) the app runs on a timer: the webhook sender and the expiry
scanner. The ``outbox`` is handed to ``UsageRecorder`` and ``TokenService`` so that their
units of work write events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from apitokens.domain.clock import Clock
from apitokens.service.destinations import Destinations
from apitokens.service.events import EventOutbox
from apitokens.service.expiry import ExpiryScanner
from apitokens.service.token_usage import UsageReport
from apitokens.service.usage import UsageRecorder
from apitokens.service.webhooks import Sender, WebhookService
from apitokens.settings import Settings
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.webhooks")

MAX_BATCHES_PER_PASS = 100

Job = tuple[str, float, Callable[[], None]]


@dataclass
class Lifecycle:
    settings: Settings
    outbox: EventOutbox
    webhooks: WebhookService
    sender: Sender
    expiry: ExpiryScanner
    usage_report: UsageReport

    def deliver(self) -> None:
        """Send due deliveries, a batch at a time, while whole batches are due."""
        try:
            for _ in range(MAX_BATCHES_PER_PASS):
                if self.sender.run_once() < self.sender.batch:
                    return
        except Exception as error:
            log.warning("webhook delivery pass failed", extra={"error": type(error).__name__})

    def scan(self) -> None:
        try:
            self.expiry.run_once()
        except Exception as error:
            log.warning("expiry warning scan failed", extra={"error": type(error).__name__})

    def jobs(self) -> list[Job]:
        return [
            ("webhooks", self.settings.webhook_poll_seconds, self.deliver),
            ("expiry", self.settings.expiry_scan_seconds, self.scan),
        ]

    def close(self) -> None:
        self.sender.close()


def build_lifecycle(
    settings: Settings, store: Store, clock: Clock, outbox: EventOutbox, usage: UsageRecorder
) -> Lifecycle:
    destinations = Destinations(settings.webhook_allow_private)
    return Lifecycle(
        settings=settings,
        outbox=outbox,
        webhooks=WebhookService(store, clock, destinations),
        sender=Sender(
            store,
            clock,
            destinations,
            timeout_seconds=settings.webhook_timeout_seconds,
            retry_seconds=settings.webhook_retry_seconds,
        ),
        expiry=ExpiryScanner(store, clock, outbox, settings.expiry_warnings),
        usage_report=UsageReport(store, clock, usage),
    )
