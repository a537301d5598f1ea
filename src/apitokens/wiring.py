"""The composition root: settings, a store and a clock in; the services of one instance out.

The HTTP app, the command line (``bootstrap``) and the tests build everything here and
nowhere else. ``store`` defaults to the database of ``settings.database_url``
(``memory://`` for the in-memory store); ``clock`` to the system clock.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import timedelta

from apitokens.domain.clock import Clock, SystemClock
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.validation import Lifetimes
from apitokens.domain.values import ValueCodec
from apitokens.http.render import token_body
from apitokens.metrics import STORED_TOKENS_TTL_SECONDS, Metrics
from apitokens.service.audit import AuditTrail
from apitokens.service.auth import Authenticator, Pause
from apitokens.service.background import Background, Readiness, Schedule
from apitokens.service.cache import CredentialCache
from apitokens.service.events import EventOutbox
from apitokens.service.freshness import Freshness
from apitokens.service.known import KnownDigests
from apitokens.service.leaks import LeakReports
from apitokens.service.lifecycle import Lifecycle, build_lifecycle
from apitokens.service.limiter import FailureLimiter
from apitokens.service.tokens import TokenService
from apitokens.service.usage import UsageRecorder
from apitokens.settings import Settings
from apitokens.storage.port import Store

MEMORY_URL = "memory://"

FEED_PRUNE_SECONDS = 60.0


@dataclass
class Services:
    """Everything one running instance holds."""

    settings: Settings
    store: Store
    clock: Clock
    catalog: PermissionCatalog
    codec: ValueCodec
    cache: CredentialCache
    usage: UsageRecorder
    limiter: FailureLimiter
    auth: Authenticator
    tokens: TokenService
    audit: AuditTrail
    leaks: LeakReports
    freshness: Freshness
    background: Background
    lifecycle: Lifecycle
    metrics: Metrics


def open_store(settings: Settings) -> Store:
    """The store ``settings.database_url`` names (SQLAlchemy URL, or ``memory://``)."""
    if settings.database_url == MEMORY_URL:
        from apitokens.storage.memory import MemoryStore

        return MemoryStore()
    from apitokens.storage.sql.store import SqlStore

    return SqlStore(settings.database_url)


def lifetimes_of(settings: Settings) -> Lifetimes:
    def span(seconds: int | None) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds else None

    return Lifetimes(span(settings.default_lifetime_seconds), span(settings.max_lifetime_seconds))


def build(
    settings: Settings, *, store: Store | None = None, clock: Clock | None = None
) -> Services:
    clock = clock or SystemClock()
    store = store if store is not None else open_store(settings)
    codec = ValueCodec(settings.token_prefix)
    metrics = Metrics()
    cache = CredentialCache(on_clear=metrics.cache_invalidated)
    outbox = EventOutbox(clock, token_body)  # events render tokens as the API does
    usage = UsageRecorder(store, events=outbox)
    limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    readiness = Readiness()
    rotations = FailureLimiter(settings.rotation_limit, settings.rotation_window_seconds)
    known = KnownDigests()
    tokens = TokenService(
        store, codec, clock, lifetimes_of(settings), cache, usage, rotations, known, events=outbox
    )
    freshness = Freshness(store, cache, known)
    schedule = Schedule(
        poll_seconds=settings.cache_poll_seconds,
        flush_seconds=settings.last_used_flush_seconds,
        prune_seconds=FEED_PRUNE_SECONDS,
        feed_retention=timedelta(seconds=settings.change_feed_retention_seconds),
    )
    background = Background(
        store, freshness, usage, clock, schedule, readiness, on_flush=metrics.usage_flush
    )
    lifecycle = build_lifecycle(settings, store, clock, outbox, usage)
    for name, every, run in lifecycle.jobs():  # the webhook sender and the expiry scanner
        background.add_job(name, every, run)
    background.add_closer(lifecycle.close)
    leak_limiter = FailureLimiter(settings.leak_report_limit, settings.leak_report_window_seconds)
    services = Services(
        settings=settings,
        store=store,
        clock=clock,
        catalog=PermissionCatalog(settings.extra_permissions),
        codec=codec,
        cache=cache,
        usage=usage,
        limiter=limiter,
        auth=Authenticator(
            store,
            codec,
            cache,
            usage,
            limiter,
            clock,
            readiness,
            freshness,
            metrics,
            pause=refusal_pause(settings.refusal_delay_seconds),
        ),
        tokens=tokens,
        audit=AuditTrail(store),
        leaks=LeakReports(store, codec, tokens, leak_limiter, clock, readiness),
        freshness=freshness,
        background=background,
        lifecycle=lifecycle,
        metrics=metrics,
    )
    _sample_gauges(services)
    return services


def refusal_pause(seconds: float) -> Pause | None:
    """The wait before a refused key is answered (``refusal_delay_seconds``), if any."""
    return functools.partial(asyncio.sleep, seconds) if seconds > 0 else None


def _sample_gauges(services: Services) -> None:
    def stored_tokens() -> int:
        with services.store.unit() as unit:
            return unit.tokens.count()

    services.metrics.sample_at_scrape(
        "apitokens_tokens_stored",
        "Tokens in the database (a COUNT, reused for a few seconds)",
        stored_tokens,
        ttl=STORED_TOKENS_TTL_SECONDS,
    )
    services.metrics.sample_at_scrape(
        "apitokens_credential_cache_entries",
        "Credentials held in this instance's cache",
        services.cache.__len__,
    )
