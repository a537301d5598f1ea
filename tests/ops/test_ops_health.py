"""``/healthz`` and ``/readyz`` of the app, with the database up and (PostgreSQL) down."""

from __future__ import annotations

import time

import httpx
import pytest
from metrics_scrape import scrape

from support.inprocess import InProcessServer
from support.postgres import PostgresCluster
from support.protocols import ApiClientFactory


@pytest.mark.app_backends("memory", "sqlite", "postgresql")
def test_healthz_and_readyz_on_a_live_database(
    app_server: InProcessServer, api: ApiClientFactory
) -> None:
    client = api(app_server)
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert ready.headers["content-type"] == "application/json"


def wait_for_status(client: httpx.Client, path: str, status: int, seconds: float = 15) -> None:
    """Poll ``path`` until it answers ``status`` (PostgreSQL is starting meanwhile)."""
    deadline = time.monotonic() + seconds
    while (got := client.get(path).status_code) != status:
        assert time.monotonic() < deadline, f"{path} still answers {got}, not {status}"
        time.sleep(0.1)


@pytest.mark.app_backends("postgresql")
def test_readyz_is_503_while_the_database_is_down(
    pg_cluster: PostgresCluster, app_server: InProcessServer, api: ApiClientFactory
) -> None:
    server = app_server
    client = api(server)
    assert client.get("/readyz").status_code == 200
    pg_cluster.stop()
    try:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["message"] == "the token database is unavailable"
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        server.poll()  # a poll of the change feed that cannot read it
        metrics = scrape(client)  # still served: nothing in it needs the database
        assert metrics.value("apitokens_tokens_stored") is None  # unknown, not a made-up 0
        unreachable = metrics.value(
            "apitokens_credential_cache_invalidations_total", reason="unreachable"
        )
        assert unreachable is not None
        assert unreachable >= 1
    finally:
        pg_cluster.start()
    wait_for_status(client, "/readyz", 200)
