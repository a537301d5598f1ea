"""Prometheus metrics: one registry per application, recorded cheaply on the hot path.

Each app gets its own ``CollectorRegistry`` (held by the app's Services), so several apps in one
process (tests, embedding) never collide. The request path pays one dict lookup and a
few additions under one lock per request: the tallies reach prometheus_client's metrics
when the registry is collected (``Metrics.fold``), and label children are created once per
(method, route, status) and kept. Gauges that need I/O (tokens stored) are computed at
scrape time, never on the request path.

Label values are bounded: routes are templates (``/api-tokens/{id}``, or ``unmatched``),
methods outside the usual set are counted as ``OTHER``, and the other labels come from
fixed vocabularies. No label ever carries a token id or value.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from apitokens import __version__

log = logging.getLogger("apitokens.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
STORED_TOKENS_TTL_SECONDS = 5.0


class Metrics:
    """Every metric of one application instance, in its own registry.

    ``registry`` is what ``/metrics`` shows. In prometheus_client's multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR`` set, as ``apitokens serve --workers N`` does for N > 1),
    counters and histograms are recorded in files shared by the worker processes and
    ``registry`` reads them all, so a scrape answered by any worker shows the sums over
    every worker. Gauges read at scrape time then describe the worker that answered, and
    the ``process_*`` metrics (one process's CPU and memory) are left out.
    """

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.registry.register(_FoldFirst(self))  # first: collected before any other
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            registry = CollectorRegistry()  # recorded to the shared files, read through them
        else:
            registry = self.registry
            ProcessCollector(registry=registry)
        PlatformCollector(registry=self.registry)
        Info("apitokens_build", "The running version", registry=self.registry).info(
            {"version": __version__}
        )
        self._requests = Counter(
            "apitokens_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=registry,
        )
        self._latency = Histogram(
            "apitokens_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._authentications = Counter(
            "apitokens_authentications",
            "Authentication attempts, by outcome (ok, invalid, expired, forbidden_address, "
            "rate_limited) and reason (for invalid: missing, malformed, unknown, rotated_out)",
            ("outcome", "reason"),
            registry=registry,
        )
        self._flushes = Counter(
            "apitokens_last_used_flushes",
            "Writes of the coalesced lastUsedAt updates (and queued audit events)",
            registry=registry,
        )
        self._flush_failures = Counter(
            "apitokens_last_used_flush_failures",
            "lastUsedAt writes that failed (kept in memory and retried)",
            registry=registry,
        )
        self._invalidations = Counter(
            "apitokens_credential_cache_invalidations",
            "Drops from the in-memory credential cache, by reason (change: the entries of "
            "tokens the change feed named; lost: everything, the feed position was "
            "(re)started; unreachable: everything, the feed could not be read)",
            ("reason",),
            registry=registry,
        )
        self._lookups = Counter(
            "apitokens_credential_lookups",
            "Database lookups of a presented value's digest (cache misses that the filter "
            "of stored digests let through), by result: found (a stored value, current or "
            "rotated out) or unknown (no stored value: the filter's false positives, and "
            "values of deleted tokens until the filter is rebuilt)",
            ("result",),
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._auth_children: dict[tuple[str, str], Counter] = {}
        self._tally_lock = threading.Lock()
        self._request_tally: dict[tuple[str, str, int], _Tally] = {}
        self._auth_tally: dict[tuple[str, str], int] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (the hot path: see ``fold``)."""
        if method not in METHODS:
            method = "OTHER"
        key = (method, route, status)
        if self.multiprocess:  # the other workers read the shared files: record at once
            counter, histogram = self._children(key)
            counter.inc()
            histogram.observe(seconds)
            return
        bucket = bisect.bisect_left(_BOUNDS, seconds)  # the first bound >= seconds, as observe()
        if key not in self._request_children:
            self._children(key)  # now, so that its series' _created is its first request's
        with self._tally_lock:
            tally = self._request_tally.get(key)
            if tally is None:
                tally = self._request_tally[key] = [0, 0.0, [0] * len(_BOUNDS)]
            tally[0] += 1
            tally[1] += seconds
            tally[2][bucket] += 1

    def authentication(self, outcome: str, reason: str) -> None:
        """Count one authentication decision (``service.auth.AuthOutcomes``; hot path)."""
        key = (outcome, reason)
        if self.multiprocess:
            self._auth_child(key).inc()
            return
        if key not in self._auth_children:
            self._auth_child(key)
        with self._tally_lock:
            self._auth_tally[key] = self._auth_tally.get(key, 0) + 1

    def fold(self) -> None:
        """Add what the hot path tallied to the Prometheus metrics.

        Each request used to cost four ``inc`` calls through prometheus_client (the
        counter, and the histogram's sum and bucket) plus its per-call checks; it now
        costs a few additions under one lock, and the sums reach the metrics here: before
        every collection of ``registry``, so a scrape, or any read of the registry, sees
        every request answered before it. In multiprocess mode (``--workers`` N > 1) there
        is no tally: a scrape answered by one worker reads the others' counts from the
        shared files, so each request is recorded there at once.
        """
        with self._tally_lock:
            requests, self._request_tally = self._request_tally, {}
            auths, self._auth_tally = self._auth_tally, {}
        for key, (count, total, buckets) in requests.items():
            counter, histogram = self._children(key)
            counter.inc(count)
            # What observe() does per value, once per batch: the sum, and the bucket each
            # value fell in (prometheus_client keeps per-bucket counts, made cumulative
            # when collected). tests/ops/test_ops_metrics.py compares the two.
            histogram._sum.inc(total)
            for index, n in enumerate(buckets):
                if n:
                    histogram._buckets[index].inc(n)
        for auth_key, n in auths.items():
            self._auth_child(auth_key).inc(n)

    def _children(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        children = self._request_children.get(key)
        if children is None:
            method, route, status = key
            children = self._request_children[key] = (
                self._requests.labels(method, route, str(status)),
                self._latency.labels(method, route),
            )
        return children

    def _auth_child(self, key: tuple[str, str]) -> Counter:
        child = self._auth_children.get(key)
        if child is None:
            child = self._auth_children[key] = self._authentications.labels(*key)
        return child

    def cache_invalidated(self, reason: str) -> None:
        self._invalidations.labels(reason).inc()

    def credential_lookup(self, found: bool) -> None:
        self._lookups.labels("found" if found else "unknown").inc()

    def usage_flush(self, succeeded: bool) -> None:
        (self._flushes if succeeded else self._flush_failures).inc()

    def sample_at_scrape(
        self, name: str, documentation: str, read: Callable[[], float], ttl: float = 0.0
    ) -> None:
        """A gauge read by ``read()`` when scraped, reused for ``ttl`` seconds.

        When ``read`` raises, the gauge is left out of that scrape (an absent series says
        "unknown" better than a stale or made-up number).
        """
        self.registry.register(ScrapedGauge(name, documentation, read, ttl))


_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
_Tally = list[Any]
"""``[count, sum of seconds, [count per bucket of _BOUNDS]]`` of one (method, route, status)."""


class _FoldFirst(Collector):
    """Folds the hot path's tallies into the metrics whenever the registry is collected."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        self._metrics.fold()
        return []


class ScrapedGauge(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        read: Callable[[], float],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: float | None = None
        self._read_at: float | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Registration must not call read(): the database may not even be migrated yet.
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        value = self._current()
        if value is None:
            return []
        return [GaugeMetricFamily(self.name, self.documentation, value=value)]

    def _current(self) -> float | None:
        with self._lock:  # concurrent scrapes share one read
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl:
                try:
                    self._value = float(self._read())
                except Exception as error:
                    log.warning(
                        "metric not available",
                        extra={"metric": self.name, "error": type(error).__name__},
                    )
                    self._value = None
                self._read_at = now  # a failure is remembered too: no read per scrape
            return self._value
