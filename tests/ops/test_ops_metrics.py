"""``/metrics`` of the app: known traffic in, exact counts out."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from metrics_scrape import Scrape, scrape

from apitokens import __version__
from apitokens.metrics import Metrics
from support.protocols import ApiClientFactory, AppFactory

READ = "OrganizationAPITokenRead"
SELF = "/api-tokens/self"
FAILURE_LIMIT = 8
ENV = {"APITOKENS_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT)}
REQUESTS = "apitokens_http_requests_total"
AUTHS = "apitokens_authentications_total"


def create(admin: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    response = admin.post("/api-tokens", json={"name": name, "permissions": [READ], **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_self(api: ApiClientFactory, base: str, value: str | None) -> int:
    return api(base, value).get(SELF).status_code


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.app_backends("memory", "sqlite", "postgresql")
def test_known_traffic_gives_exact_counts(app_factory: AppFactory, api: ApiClientFactory) -> None:
    server = app_factory(env=ENV)
    admin = api(server, server.admin)
    anonymous = api(server)
    expires_at = server.clock.now() + timedelta(seconds=1.5)
    short = create(admin, "short-lived", expiresAt=rfc3339(expires_at))  # auth ok #1

    assert [admin.get(SELF).status_code for _ in range(3)] == [200, 200, 200]  # ok #2-4
    assert get_self(api, server.url, "not-a-token") == 401  # invalid/malformed
    assert anonymous.get(SELF).status_code == 401  # invalid/missing
    rotating = create(admin, "rotating")  # ok #5
    rotated = admin.post(f"/api-tokens/{rotating['id']}/rotate")  # ok #6
    assert rotated.status_code == 200
    assert get_self(api, server.url, rotating["value"]) == 401  # invalid/rotated_out
    assert admin.delete(f"/api-tokens/{rotating['id']}").status_code == 204  # ok #7
    assert get_self(api, server.url, rotated.json()["value"]) == 401  # invalid/unknown
    fenced = create(admin, "fenced", allowedCIDRBlocks=["10.0.0.0/8"])  # ok #8
    assert get_self(api, server.url, fenced["value"]) == 403  # forbidden_address
    server.clock.advance_past(expires_at, margin=0.1)
    assert get_self(api, server.url, short["value"]) == 401  # expired
    server.flush()  # what the periodic lastUsedAt flush does
    server.poll()  # and the periodic poll of the change feed

    first = scrape(anonymous)
    assert first.value("apitokens_tokens_stored") == 3  # admin, short-lived, fenced
    assert first.series(AUTHS, "reason") == {
        "ok": 8,
        "malformed": 1,
        "missing": 1,
        "unknown": 2,  # a rotated-out value is counted as unknown: they are not told apart
        "expired": 1,
        "forbidden_address": 1,
    }
    assert first.total("apitokens_last_used_flushes_total") >= 1
    assert first.total("apitokens_last_used_flush_failures_total") == 0

    # 4 failures so far (malformed, rotated out, unknown, expired; a request without a key
    # is not a failure): 4 more reach the limit, and the next request from this address is
    # refused before its key is read.
    assert [get_self(api, server.url, "garbage") for _ in range(4)] == [401, 401, 401, 401]
    assert admin.get(SELF).status_code == 429
    second = scrape(anonymous)

    assert_requests(second)
    assert_latency(second)
    assert second.total(AUTHS, outcome="invalid") == 8
    assert second.series(AUTHS, "reason", outcome="invalid") == {
        "malformed": 5,
        "missing": 1,
        "unknown": 2,
    }
    assert second.value(AUTHS, outcome="ok", reason="ok") == 8
    assert second.value(AUTHS, outcome="rate_limited", reason="rate_limited") == 1
    assert second.value(AUTHS, outcome="expired", reason="expired") == 1
    assert second.value(AUTHS, outcome="forbidden_address", reason="forbidden_address") == 1
    invalidations = "apitokens_credential_cache_invalidations_total"
    # (reason="change" counts drops of cached entries; which of this traffic's tokens were
    # cached at the time is the cache's business: tests/service/test_service_cache.py.)
    assert (second.value(invalidations, reason="lost") or 0) >= 1  # the start
    assert second.value(invalidations, reason="unreachable") is None
    assert second.value("apitokens_tokens_stored") == 3
    assert second.value("apitokens_build_info", version=__version__) == 1
    for secret_or_id in (short["value"], short["id"], rotating["id"], fenced["value"]):
        assert secret_or_id not in second.text


def assert_requests(scrape: Scrape) -> None:
    by_status = scrape.series(REQUESTS, "status", method="GET", route="/api-tokens/self")
    # 200: three reads of self; 401: 5 malformed, missing, rotated out, unknown, expired;
    # 403: the address outside the token's blocks; 429: over the failure limit.
    assert by_status == {"200": 3, "401": 9, "403": 1, "429": 1}
    assert scrape.series(REQUESTS, "status", method="POST", route="/api-tokens") == {"200": 3}
    rotate = scrape.series(REQUESTS, "status", method="POST", route="/api-tokens/{id}/rotate")
    assert rotate == {"200": 1}
    assert scrape.series(REQUESTS, "status", method="DELETE", route="/api-tokens/{id}") == {
        "204": 1
    }
    # The first scrape is counted; this one is counted once its response is sent.
    assert scrape.value(REQUESTS, method="GET", route="/metrics", status="200") == 1
    routes = {dict(labels)["route"] for name, labels in scrape.samples if name == REQUESTS}
    # Route templates only: never a token id (nor a value) in a label.
    assert all(route.count("{") <= 1 and not re.search("[0-9a-f]{8}-", route) for route in routes)


def assert_latency(scrape: Scrape) -> None:
    name = "apitokens_http_request_duration_seconds"
    labels = {"method": "GET", "route": "/api-tokens/self"}
    assert scrape.types[name] == "histogram"
    assert scrape.value(f"{name}_count", **labels) == 14
    buckets = scrape.series(f"{name}_bucket", "le", **labels)
    assert buckets["+Inf"] == 14
    counts = [buckets[bound] for bound in sorted(buckets, key=float)]
    assert counts == sorted(counts)  # cumulative
    assert 0 < (scrape.value(f"{name}_sum", **labels) or 0) < 14 * 5


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        if family.name.startswith(("apitokens_http", "apitokens_authentications"))
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_tallied_requests_are_exactly_what_recording_each_would_show() -> None:
    tallied, direct = Metrics(), Metrics()
    assert not tallied.multiprocess
    direct.multiprocess = True  # the per-request path of several workers: inc and observe
    bounds = [0.0, 0.0005, 0.00050001, 0.001, 0.3, 10.0, 10.5, 99.0]  # on, past, beyond
    traffic = [("GET", "/api-tokens/self", 200, seconds) for seconds in bounds] + [
        ("GET", "/api-tokens/{id}", 404, 0.002),
        ("POST", "/api-tokens", 201, 0.02),
        ("BREW", "unmatched", 405, 0.0001),  # counted as OTHER
    ]
    auths = [("ok", "ok")] * 5 + [("invalid", "unknown")] * 2 + [("rate_limited", "rate_limited")]
    for metrics in (tallied, direct):
        for request in traffic:
            metrics.request(*request)
        for outcome in auths:
            metrics.authentication(*outcome)
    found = _samples(tallied)
    assert found == _samples(direct)
    assert found[
        (
            "apitokens_http_requests_total",
            (("method", "GET"), ("route", "/api-tokens/self"), ("status", "200")),
        )
    ] == len(bounds)
    assert found[("apitokens_authentications_total", (("outcome", "ok"), ("reason", "ok")))] == 5
    # Read again: nothing is added twice.
    assert _samples(tallied) == _samples(direct)


def test_a_series_is_created_at_its_first_request_not_at_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics()
    monkeypatch.setattr(time, "time", lambda: 1_000.0)
    metrics.request("GET", "/api-tokens/self", 200, 0.001)
    metrics.authentication("ok", "ok")
    monkeypatch.setattr(time, "time", lambda: 2_000.0)
    created = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name.startswith(("apitokens_http", "apitokens_authentications"))
        and sample.name.endswith("_created")
    }
    assert created and set(created.values()) == {1_000.0}, created
