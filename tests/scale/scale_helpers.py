"""Helpers for multi-instance tests: two real servers on one database, measured over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import httpx

from support.clients import api as make_client
from support.databases import database_name
from support.postgres import PostgresCluster
from support.processes import RunningServer

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
SELF = "/api-tokens/self"

CONSISTENCY_BOUND_SECONDS = 1.0
"""The documented bound (docs/scale-out.md): a change made through one instance is refused
by every other instance at most this long after the change's response was received."""

HANG_GUARD_SECONDS = 30.0
"""How long a wait for something that must eventually happen may take before the test
fails. Not a performance threshold: only there so that a bug cannot hang the suite."""

T = TypeVar("T")


@dataclass
class Pair:
    """Two instances on one database; ``admin`` is a token holding every permission."""

    a: RunningServer
    b: RunningServer
    admin: str

    @property
    def both(self) -> tuple[RunningServer, RunningServer]:
        return (self.a, self.b)


class PairFactory(Protocol):
    """``start_pair(env_a=None, env_b=None) -> Pair`` (fixture in this folder's conftest)."""

    def __call__(
        self,
        env_a: Mapping[str, str | None] | None = None,
        env_b: Mapping[str, str | None] | None = None,
    ) -> Pair: ...


@dataclass(frozen=True)
class Measurement:
    """A measured delay, e.g. how long instance B kept accepting a credential changed
    through instance A (from A's response to B's first refusal)."""

    scenario: str
    seconds: float
    stale_answers: int = 0
    """For invalidation: B's answers that still accepted the old credential meanwhile."""


@dataclass
class Measurements:
    rows: list[Measurement] = field(default_factory=list)

    def add(self, scenario: str, seconds: float, stale_answers: int = 0) -> Measurement:
        row = Measurement(scenario, seconds, stale_answers)
        self.rows.append(row)
        return row


def body_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def create_token(
    client: httpx.Client, name: str, permissions: Iterable[str] = (READ,)
) -> dict[str, Any]:
    """Create a token through ``client`` (an admin client); return the body with ``value``."""
    response = client.post("/api-tokens", json={"name": name, "permissions": list(permissions)})
    assert response.status_code == 200, response.text
    return body_of(response)


def self_status(server: RunningServer | str, value: str) -> int:
    """``GET /api-tokens/self`` with ``value``, on a new client; the status code."""
    with make_client(server, value) as client:
        return client.get(SELF).status_code


def warm(client: httpx.Client) -> None:
    """Make the client's server accept (and so cache) the client's key."""
    for _ in range(2):
        response = client.get(SELF)
        assert response.status_code == 200, response.text


def measure_refusal(
    client: httpx.Client, since: float, refused: Iterable[int] = (401,)
) -> tuple[float, int]:
    """Ask ``GET /api-tokens/self`` through ``client`` until the status is in ``refused``.

    Returns (seconds from ``since`` to that answer, answers that still accepted the key).
    The client must exist already: making one costs more than what is measured here. Fails
    after ``HANG_GUARD_SECONDS``, so a slow refusal is reported with its real delay.
    """
    wanted = set(refused)
    stale = 0
    while True:
        status = client.get(SELF).status_code
        elapsed = time.monotonic() - since
        if status in wanted:
            return elapsed, stale
        assert status == 200, f"unexpected {status} while waiting for {sorted(wanted)}"
        stale += 1
        assert elapsed < HANG_GUARD_SECONDS, f"still accepted after {elapsed:.2f} s"


def stored_last_used(cluster: PostgresCluster, url: str, token_id: str) -> str | None:
    """``last_used_at`` as stored in the database (read directly), in the API's format."""
    with cluster.connect(database_name(url)) as connection:
        row = connection.execute(
            "SELECT last_used_at FROM tokens WHERE id = %s", (token_id,)
        ).fetchone()
    assert row is not None
    stored: datetime | None = row[0]
    if stored is None:
        return None
    moment = stored.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def answers(client: httpx.Client, path: str, status: int) -> Callable[[], bool]:
    """A check for ``wait_for``: ``GET path`` through ``client`` answers ``status``."""
    return lambda: client.get(path).status_code == status


def wait_for(what: str, check: Callable[[], bool], interval: float = 0.05) -> float:
    """Wait until ``check()`` is true; the seconds it took (fails after the hang guard)."""
    start = time.monotonic()
    while not check():
        elapsed = time.monotonic() - start
        assert elapsed < HANG_GUARD_SECONDS, f"{what}: not after {elapsed:.1f} s"
        time.sleep(interval)
    return time.monotonic() - start


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released together; results in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@dataclass(frozen=True)
class Call:
    """One HTTP request to send with ``send_all_at_once``."""

    server: RunningServer
    key: str
    method: str
    path: str
    json: Any = None


def send_all_at_once(calls: list[Call]) -> list[httpx.Response]:
    """Send every request from its own thread, all released together; responses in order.

    The clients are made first: making one takes longer than a request, and would spread
    the requests out instead of sending them at once.
    """
    clients = [make_client(call.server, call.key) for call in calls]
    try:
        return all_at_once(
            [
                partial(client.request, call.method, call.path, json=call.json)
                for client, call in zip(clients, calls, strict=True)
            ]
        )
    finally:
        for client in clients:
            client.close()


def alternate(pair: Pair, count: int) -> Iterator[RunningServer]:
    """A, B, A, B, ... ``count`` times."""
    for index in range(count):
        yield pair.both[index % 2]


def assert_no_server_error(responses: Iterable[httpx.Response]) -> None:
    """Every response is a success or a 4xx that carries a message; none is a 5xx."""
    for response in responses:
        assert response.status_code < 500, f"{response.status_code}: {response.text}"
        if response.status_code >= 400:
            assert body_of(response).get("message"), response.text
