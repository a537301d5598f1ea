"""The operations routes and metrics in process (no server, no lifespan)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from metrics_scrape import Scrape
from prometheus_client import generate_latest

from apitokens.http.app import create_app
from apitokens.metrics import Metrics, ScrapedGauge
from apitokens.settings import Settings


def client_for(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def unreachable_database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/missing-directory/apitokens.db"


async def test_readyz_is_503_and_metrics_still_served_without_a_database(
    tmp_path: Path,
) -> None:
    async with client_for(Settings(database_url=unreachable_database(tmp_path))) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["message"] == "the token database is unavailable"
        assert (await client.get("/healthz")).status_code == 200
        page = await client.get("/metrics")
        assert page.status_code == 200
        scrape = Scrape(page.text)
    assert scrape.value("apitokens_tokens_stored") is None
    assert scrape.value("apitokens_credential_cache_entries") == 0
    requests = "apitokens_http_requests_total"
    assert scrape.value(requests, method="GET", route="/readyz", status="503") == 1
    assert scrape.value(requests, method="GET", route="/healthz", status="200") == 1


async def test_openmetrics_when_asked(tmp_path: Path) -> None:
    async with client_for(Settings(database_url=unreachable_database(tmp_path))) as client:
        page = await client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert page.headers["content-type"].startswith("application/openmetrics-text")
    assert page.text.endswith("# EOF\n")


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings(database_url=unreachable_database(tmp_path), metrics=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/healthz")).status_code == 200
        off = await client.get("/metrics")
    assert off.status_code == 404
    assert "message" in off.json()
    services = app.state.services
    assert services.metrics.registry is not None
    assert "apitokens_http_requests_total{" not in _text(services.metrics)  # nothing recorded


def _text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    first, second = Metrics(), Metrics()  # would raise "Duplicated timeseries" if shared
    first.request("GET", "/healthz", 200, 0.001)
    assert 'route="/healthz"' in _text(first)
    assert 'route="/healthz"' not in _text(second)


def test_label_children_are_reused_and_methods_bounded() -> None:
    metrics = Metrics()
    for method in ("GET", "GET", "BREW", "PROPFIND", "GET"):
        metrics.request(method, "unmatched", 405, 0.0001)
    scrape = Scrape(_text(metrics))
    by_method = scrape.series("apitokens_http_requests_total", "method", status="405")
    assert by_method == {"GET": 3, "OTHER": 2}
    assert "BREW" not in scrape.text
    assert len(metrics._request_children) == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_scraped_gauge_is_reused_for_its_ttl_and_absent_on_failure() -> None:
    clock = FakeClock()
    answers: list[int | Exception] = [3, RuntimeError("database down"), 5]
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    gauge = ScrapedGauge("apitokens_tokens_stored", "Tokens", read, ttl=5.0, clock=clock)
    assert [f.name for f in gauge.describe()] == ["apitokens_tokens_stored"]
    assert reads == []  # describing never reads

    def values() -> list[float]:
        return [sample.value for family in gauge.collect() for sample in family.samples]

    assert values() == [3.0]
    clock.now += 4.9
    assert values() == [3.0]
    assert len(reads) == 1
    clock.now += 0.1
    assert values() == []  # the failed read: absent, not zero
    clock.now += 1
    assert values() == []  # the failure is remembered for the ttl too
    assert len(reads) == 2
    clock.now += 5
    assert values() == [5.0]


@pytest.mark.parametrize("reason", ["change", "epoch", "unreachable"])
def test_cache_invalidations_by_reason(reason: str) -> None:
    metrics = Metrics()
    metrics.cache_invalidated(reason)
    line = f'apitokens_credential_cache_invalidations_total{{reason="{reason}"}} 1.0'
    assert line in _text(metrics)
