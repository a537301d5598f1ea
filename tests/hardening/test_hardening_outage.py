"""A database that goes away: PostgreSQL stops under load, and comes back.

While callers authenticate and write at full speed, the PostgreSQL server is stopped
(``pg_ctl stop -m fast``: every session is cut). Then:

- every request is still answered, promptly: within ``ANSWER_BOUND_SECONDS`` each (the
  documented bound on hanging: the pool's connect timeout is 3 s), never a 5xx other than
  503, never a dropped connection;
- once the outage is noticed (the cache-epoch poll or the lost LISTEN connection drops the
  cached credentials, within ``cache_poll_seconds``), requests get 503 with a message and
  ``Retry-After``: a revocation made elsewhere could not be seen, so nothing is served from
  memory;
- PostgreSQL starts again, and the same server process answers 200 again within
  ``RECOVERY_BOUND_SECONDS`` without a restart: reads, writes, and the cache works.

The figures (longest answer during the outage, time to the first 503, time to recover) are
printed in the session summary.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from hardening_support import READ, SELF, TOKENS, Figures, create, key
from raw_http import Connection

from support.postgres import PostgresCluster
from support.processes import RunningServer
from support.protocols import ServerFactory

pytestmark = pytest.mark.postgres

ClientFactory = Callable[..., httpx.Client]
CONCURRENCY = 8
BEFORE_SECONDS = 1.5
OUTAGE_SECONDS = 4.0
ANSWER_BOUND_SECONDS = 5.0
RECOVERY_BOUND_SECONDS = 10.0
UNAVAILABLE = "the token database is unavailable; retry shortly"


@pytest.fixture
def pg_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database (this test is about PostgreSQL only)."""
    import os

    requested = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    if requested and "postgresql" not in {part.strip() for part in requested.split(",")}:
        pytest.skip("APITOKENS_TEST_BACKENDS excludes postgresql")
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    cluster.start()
    name = f"o_{secrets.token_hex(6)}"
    yield cluster.create_database(name)
    cluster.start()  # whatever happened, leave the shared cluster running
    cluster.drop_database(name, later=True)


@dataclass
class Timeline:
    """(sent at, answered at, status or exception name, body) of every request."""

    events: list[tuple[float, float, int | str, bytes]] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[tuple[float, float, int | str, bytes]]:
        return [event for event in self.events if start <= event[0] < end]


async def _caller(
    server: RunningServer, values: list[str], admin: str, until: list[float], timeline: Timeline
) -> None:
    connection = Connection(server.host, server.port)
    turn = 0
    while time.monotonic() < until[0]:
        turn += 1
        if turn % 10 == 0:
            method, path, headers, body = (
                "POST",
                TOKENS,
                key(admin),
                {"name": "during-outage", "permissions": [READ]},
            )
        else:
            method, path, headers, body = "GET", SELF, key(values[turn % len(values)]), None
        sent = time.monotonic()
        try:
            answer = await asyncio.wait_for(
                connection.request(method, path, list(headers.items()), body),
                timeout=ANSWER_BOUND_SECONDS * 3,
            )
            outcome: int | str = answer.status
            content = answer.body
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            outcome, content = type(error).__name__, b""
            await asyncio.sleep(0.05)
        timeline.events.append((sent, time.monotonic(), outcome, content))
    connection.close()


async def _drive(
    server: RunningServer, cluster: PostgresCluster, values: list[str]
) -> tuple[Timeline, dict[str, float]]:
    timeline = Timeline()
    marks: dict[str, float] = {}
    until = [time.monotonic() + 3600.0]  # moved once the database is back
    callers = [
        asyncio.create_task(_caller(server, values, server.admin, until, timeline))
        for _ in range(CONCURRENCY)
    ]
    await asyncio.sleep(BEFORE_SECONDS)
    marks["stop requested"] = time.monotonic()
    await asyncio.to_thread(cluster.stop)
    marks["stopped"] = time.monotonic()
    await asyncio.sleep(OUTAGE_SECONDS)
    marks["start requested"] = time.monotonic()
    await asyncio.to_thread(cluster.start)
    marks["started"] = time.monotonic()
    until[0] = marks["started"] + RECOVERY_BOUND_SECONDS
    while time.monotonic() < until[0]:
        await asyncio.sleep(0.1)
        recent = timeline.between(time.monotonic() - 1.0, time.monotonic())
        if recent and all(event[2] == 200 for event in recent):
            marks["recovered"] = time.monotonic()
            until[0] = time.monotonic() + 1.0  # one more second of load, then stop
            break
    await asyncio.gather(*callers)
    return timeline, marks


def test_postgresql_outage_under_load_gives_prompt_503_then_recovers(
    hardened_factory: ServerFactory,
    pg_database_url: str,
    pg_cluster: PostgresCluster,
    client: ClientFactory,
    figures: Figures,
) -> None:
    server = hardened_factory(pg_database_url)
    admin = client(server, server.admin)
    values = [create(admin, f"outage-{n}", [READ])["value"] for n in range(10)]

    timeline, marks = asyncio.run(_drive(server, pg_cluster, values))

    assert "recovered" in marks, (
        f"no recovery within {RECOVERY_BOUND_SECONDS} s of PostgreSQL starting; last answers: "
        f"{[event[2] for event in timeline.events[-20:]]}"
    )
    outcomes = collections.Counter(event[2] for event in timeline.events)
    dropped = {outcome for outcome in outcomes if isinstance(outcome, str)}
    assert not dropped, f"requests not answered: {outcomes}"
    assert set(outcomes) <= {200, 503}, outcomes
    longest = max(answered - sent for sent, answered, _, _ in timeline.events)
    assert longest <= ANSWER_BOUND_SECONDS, f"a request took {longest:.2f} s"
    outage = timeline.between(marks["stop requested"], marks["started"])
    unavailable = [event for event in outage if event[2] == 503]
    assert unavailable, f"no 503 during the outage: {collections.Counter(e[2] for e in outage)}"
    assert all(
        b'"message"' in event[3] and UNAVAILABLE.encode() in event[3] for event in unavailable
    )
    first_503 = min(event[1] for event in unavailable) - marks["stop requested"]
    # Once noticed, nothing is served from memory: every answer is 503 until it is back.
    # (Answered before the start was requested: a request sent just before it may be
    # served by the database that is already back.)
    noticed = [
        event
        for event in timeline.between(marks["stopped"] + 1.0, marks["start requested"])
        if event[1] < marks["start requested"]
    ]
    served = [
        (round(sent - marks["stopped"], 3), round(answered - marks["stopped"], 3), body[:80])
        for sent, answered, status, body in noticed
        if status != 503
    ]
    assert noticed and not served, f"answered during the outage (s after stop): {served[:10]}"
    back = [answered for _, answered, status, _ in timeline.events if answered > marks["stopped"]]
    first_200 = min(
        answered
        for _, answered, status, _ in timeline.events
        if status == 200 and answered > marks["stopped"]
    )
    recovery = first_200 - marks["start requested"]
    assert back and all(
        status == 200 for sent, _, status, _ in timeline.events if sent > marks["recovered"]
    )

    # The same process, without a restart: reads, writes, and changes seen at once.
    token = create(admin, "after-outage", [READ])
    assert admin.get(SELF, headers=key(token["value"])).status_code == 200
    rotated = admin.post(f"{TOKENS}/{token['id']}/rotate")
    assert rotated.status_code == 200
    assert admin.get(SELF, headers=key(token["value"])).status_code == 401
    assert admin.get("/readyz").status_code == 200

    figures.add(
        "PostgreSQL outage under load",
        f"{len(timeline.events)} requests: {dict(outcomes)}; longest answer "
        f"{longest * 1000:.0f} ms (bound {ANSWER_BOUND_SECONDS:.0f} s); first 503 "
        f"{first_503 * 1000:.0f} ms after stop requested; first 200 {recovery:.2f} s after "
        f"start requested (pg_ctl start took "
        f"{marks['started'] - marks['start requested']:.2f} s; bound "
        f"{RECOVERY_BOUND_SECONDS:.0f} s after it)",
    )
