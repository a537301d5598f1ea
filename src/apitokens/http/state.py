"""Everything one running instance holds, built once from Settings at start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from apitokens.domain.clock import Clock, SystemClock
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.rules import Lifetimes
from apitokens.domain.values import ValueCodec
from apitokens.http.render import token_body
from apitokens.metrics import STORED_TOKENS_TTL_SECONDS, Metrics
from apitokens.service.audit import AuditTrail
from apitokens.service.auth import Authenticator
from apitokens.service.cache import CredentialCache
from apitokens.service.events import EventOutbox
from apitokens.service.leaks import LeakReports
from apitokens.service.lifecycle import Lifecycle, build_lifecycle
from apitokens.service.limiter import FailureLimiter
from apitokens.service.tokens import TokenService
from apitokens.service.usage import UsageRecorder
from apitokens.settings import Settings
from apitokens.storage.sql.store import SqlStore


@dataclass
class Runtime:
    settings: Settings
    store: SqlStore
    catalog: PermissionCatalog
    codec: ValueCodec
    cache: CredentialCache
    usage: UsageRecorder
    limiter: FailureLimiter
    auth: Authenticator
    tokens: TokenService
    audit: AuditTrail
    leaks: LeakReports
    clock: Clock
    metrics: Metrics
    lifecycle: Lifecycle


def lifetimes_of(settings: Settings) -> Lifetimes:
    def span(seconds: int | None) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds else None

    return Lifetimes(span(settings.default_lifetime_seconds), span(settings.max_lifetime_seconds))


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    store = SqlStore(settings.database_url)
    codec = ValueCodec(settings.token_prefix)
    metrics = Metrics()
    cache = CredentialCache(on_clear=metrics.cache_invalidated)
    outbox = EventOutbox(clock, token_body)  # events render tokens as the API does
    usage = UsageRecorder(store, events=outbox)
    limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    tokens = TokenService(store, codec, clock, lifetimes_of(settings), cache, usage, events=outbox)
    return Runtime(
        settings=settings,
        store=store,
        catalog=PermissionCatalog(settings.extra_permissions),
        codec=codec,
        cache=cache,
        usage=usage,
        limiter=limiter,
        auth=Authenticator(store, codec, cache, usage, limiter, clock, metrics),
        tokens=tokens,
        audit=AuditTrail(store),
        leaks=LeakReports(
            store,
            codec,
            tokens,
            FailureLimiter(settings.leak_report_limit, settings.leak_report_window_seconds),
            clock,
        ),
        clock=clock,
        metrics=_with_gauges(metrics, store, cache),
        lifecycle=build_lifecycle(settings, store, clock, outbox, usage),
    )


def _with_gauges(metrics: Metrics, store: SqlStore, cache: CredentialCache) -> Metrics:
    def stored_tokens() -> int:
        with store.unit() as unit:
            return unit.tokens.count()

    metrics.sample_at_scrape(
        "apitokens_tokens_stored",
        "Tokens in the database (a COUNT, reused for a few seconds)",
        stored_tokens,
        ttl=STORED_TOKENS_TTL_SECONDS,
    )
    metrics.sample_at_scrape(
        "apitokens_credential_cache_entries",
        "Credentials held in this instance's cache",
        cache.__len__,
    )
    return metrics
