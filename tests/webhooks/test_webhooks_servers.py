"""Real server processes: undelivered events survive a restart, several instances deliver
each event once, and daily usage adds up across instances."""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
from webhook_receiver import Receiver

from support.postgres import PostgresCluster
from support.protocols import ApiClientFactory, ServerFactory

READ = "OrganizationAPITokenRead"
WAIT_SECONDS = 30.0
IDLE = "3600"  # a sender or scanner that never runs while the test looks


def _env(poll: str, **extra: str) -> dict[str, str]:
    return {
        "APITOKENS_WEBHOOK_ALLOW_PRIVATE": "true",
        "APITOKENS_WEBHOOK_POLL_SECONDS": poll,
        "APITOKENS_LAST_USED_FLUSH_SECONDS": "0.2",
        "APITOKENS_AUTH_FAILURE_LIMIT": "1000000",
        **extra,
    }


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    """Wait for a condition another process brings about (never for time to pass)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _create_token(client: httpx.Client, name: str) -> dict[str, str]:
    created = client.post("/api-tokens", json={"name": name, "permissions": [READ]})
    assert created.status_code == 200, created.text
    body: dict[str, str] = created.json()
    return body


def _hook(client: httpx.Client, url: str) -> dict[str, str]:
    created = client.post("/webhooks", json={"url": url, "events": ["api_token.created"]})
    assert created.status_code == 200, created.text
    body: dict[str, str] = created.json()
    return body


def test_a_restarted_server_delivers_the_events_it_had_not_sent(
    server_factory: ServerFactory,
    sqlite_database_url: str,
    api: ApiClientFactory,
    receiver: Receiver,
) -> None:
    database_url = sqlite_database_url
    first = server_factory(database_url, env=_env(IDLE))
    admin = api(first, first.admin)
    hook = _hook(admin, receiver.url)
    token = _create_token(admin, "made-before-the-restart")
    assert first.stop() is not None
    assert receiver.received() == []
    second = server_factory(database_url, env=_env("0.05"), bootstrap=False)
    _wait_for("the delivery", lambda: len(receiver.received()) == 1)
    event = receiver.received()[0].verify(hook["secret"])
    assert event["type"] == "api_token.created"
    assert event["data"]["token"]["id"] == token["id"]
    deliveries = api(second, first.admin).get(f"/webhooks/{hook['id']}/deliveries").json()
    assert [d["status"] for d in deliveries["results"]] == ["delivered"]


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    if raw and "postgresql" not in raw:
        pytest.skip("APITOKENS_TEST_BACKENDS excludes postgresql")
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    cluster.start()
    name = f"w_{secrets.token_hex(6)}"
    yield cluster.create_database(name)
    cluster.drop_database(name, later=True)


@pytest.mark.postgres
def test_two_instances_on_postgresql_deliver_each_event_once(
    server_factory: ServerFactory,
    postgres_url: str,
    api: ApiClientFactory,
    receiver: Receiver,
) -> None:
    a = server_factory(postgres_url, env=_env("0.02"))
    b = server_factory(postgres_url, env=_env("0.02"), bootstrap=False)
    clients = [api(a, a.admin), api(b, a.admin)]
    hook = _hook(clients[0], receiver.url)
    count = 24
    for number in range(count):
        _create_token(clients[number % 2], f"t{number}")

    def all_delivered() -> bool:
        page = clients[1].get(f"/webhooks/{hook['id']}/deliveries", params={"limit": 100})
        statuses = [d["status"] for d in page.json()["results"]]
        return len(statuses) == count and set(statuses) == {"delivered"}

    _wait_for("every delivery to be recorded delivered", all_delivered)
    a.stop()
    b.stop()
    ids = Counter(request.headers["webhook-id"] for request in receiver.received())
    assert len(ids) == count
    assert set(ids.values()) == {1}, "a delivery was sent more than once"
    for request in receiver.received():
        request.verify(hook["secret"])


def test_daily_usage_adds_up_across_instances(
    server_factory: ServerFactory, database_url: str, api: ApiClientFactory
) -> None:
    a = server_factory(database_url, env=_env(IDLE))
    b = server_factory(database_url, env=_env(IDLE), bootstrap=False)
    token = _create_token(api(a, a.admin), "used")
    for number in range(17):
        server = a if number % 3 else b
        assert api(server, token["value"]).get("/api-tokens/self").status_code == 200
    admin = api(a, a.admin)

    def counted() -> list[int]:
        usage = admin.get(f"/api-tokens/{token['id']}/usage", params={"days": 1})
        assert usage.status_code == 200
        return [day["requests"] for day in usage.json()["results"]]

    # A answers with what both flushed plus its own pending uses: B's arrive with B's flush.
    _wait_for("both instances' counts", lambda: counted() == [17])
    a.stop()  # a clean shutdown writes what is pending: nothing is counted twice
    b.stop()
    a.start()
    assert counted() == [17]
