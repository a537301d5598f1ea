"""PostgreSQL goes away under two running instances, then comes back.

While it is away every request that needs it gets a prompt 503 with a message (never a
hang, never a 500), and cached credentials stop being trusted. When it is back both
instances serve again without a restart, and B hears changes through NOTIFY again.
"""

from __future__ import annotations

import time

import httpx
import pytest
from scale_helpers import (
    CONSISTENCY_BOUND_SECONDS,
    READ,
    SELF,
    Measurements,
    Pair,
    PairFactory,
    answers,
    body_of,
    create_token,
    measure_refusal,
    stored_last_used,
    wait_for,
    warm,
)

from support.postgres import PostgresCluster
from support.processes import RunningServer
from support.protocols import ApiClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SLOW_POLL = {"APITOKENS_CACHE_POLL_SECONDS": "5"}
"""B learns of the outage and of later changes from its listener, not from the poll."""
QUICK_FLUSH = {"APITOKENS_LAST_USED_FLUSH_SECONDS": "0.5"}
LISTENING = '"message":"listening for token changes"'


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert "unavailable" in body_of(response)["message"]
    assert response.headers.get("Retry-After")


def _check_outage(
    pair: Pair, api: ApiClientFactory, value: str, measurements: Measurements, mode: str
) -> None:
    for label, server in zip("AB", pair.both, strict=True):
        admin = api(server, pair.admin)
        started = time.monotonic()
        listed = admin.get("/api-tokens")
        measurements.add(f"503 answer, PostgreSQL stopped ({mode})", time.monotonic() - started)
        _assert_unavailable(listed)
        _assert_unavailable(admin.post("/api-tokens", json={"name": "x", "permissions": [READ]}))
        assert api(server).get("/readyz").status_code == 503
        seconds = wait_for(f"{label} distrusts its cache", answers(api(server, value), SELF, 503))
        measurements.add(f"cache distrusted after outage ({mode})", seconds)


def _listen_count(server: RunningServer) -> int:
    return server.log_text().count(LISTENING)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_an_outage_gives_503_and_both_instances_recover_without_restart(
    start_pair: PairFactory,
    api: ApiClientFactory,
    pg_cluster: PostgresCluster,
    shared_database_url: str,
    measurements: Measurements,
    mode: str,
) -> None:
    pair = start_pair(env_a=QUICK_FLUSH, env_b=SLOW_POLL)
    pids = [server.pid for server in pair.both]
    token = create_token(api(pair.a, pair.admin), "survivor")
    for server in pair.both:
        warm(api(server, token["value"]))
    used_at = body_of(api(pair.a, token["value"]).get(SELF))["lastUsedAt"]

    pg_cluster.stop(mode)
    try:
        _check_outage(pair, api, token["value"], measurements, mode)
    finally:
        pg_cluster.start()

    for server in pair.both:
        seconds = wait_for("serving again", answers(api(server, pair.admin), "/api-tokens", 200))
        measurements.add(f"serving again after PostgreSQL restarted ({mode})", seconds)
    assert [server.pid for server in pair.both] == pids, "an instance was restarted"

    def written() -> bool:  # A's batched use, whether flushed before or after the outage
        stored = stored_last_used(pg_cluster, shared_database_url, token["id"])
        return stored is not None and stored >= used_at

    wait_for("the use before the outage is stored", written)
    for server in pair.both:
        assert api(server, token["value"]).get(SELF).status_code == 200

    wait_for("B listens again", lambda: _listen_count(pair.b) >= 2)
    on_b = api(pair.b, token["value"])
    warm(on_b)
    assert api(pair.a, pair.admin).delete(f"/api-tokens/{token['id']}").status_code == 204
    seconds, stale = measure_refusal(on_b, time.monotonic())
    measurements.add("delete after recovery (notify only, poll 5 s)", seconds, stale)
    assert seconds <= CONSISTENCY_BOUND_SECONDS
