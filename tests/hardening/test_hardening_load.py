"""Load holds: a sustained mixed load at the highest rate the server sustains.

Closed loop: ``CONCURRENCY`` callers each send their next request as soon as the last one
is answered, so the server is saturated and the rate is the highest it sustains here
(client and server share this machine's cores). The mix is mostly authentications (valid
values from several client addresses, some tokens fenced to a block, some invalid
values), with writes among them: creates, renames, rotations, deletes.

Pass: no 5xx and no transport error for the whole run, and the server's memory settles:
the peak RSS of the second half exceeds the first half's peak by at most
``RSS_GROWTH_BOUND_KIB`` (the documented bound; caches are bounded, usage is flushed,
so a steady load must not make memory climb). Throughput, latency and RSS are printed.
"""

from __future__ import annotations

import asyncio
import collections
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hardening_support import READ, SELF, TOKENS, Figures, ValueLedger, create, key, server_rss_kib
from raw_http import Answer, Connection

from support.processes import RunningServer
from support.protocols import ServerFactory

ClientFactory = Callable[..., httpx.Client]
DURATION_SECONDS = 6.0
CONCURRENCY = 16
RSS_GROWTH_BOUND_KIB = 16 * 1024
ADDRESSES = ["203.0.113.1", "203.0.113.2", "198.51.100.7", "2001:db8::7", "::ffff:10.1.1.1"]


@dataclass
class Run:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)


def _key(value: str, address: str | None = None) -> list[tuple[str, str]]:
    return [(name, text) for name, text in key(value, address).items()]


class Load:
    def __init__(self, server: RunningServer, values: list[str], ledger: ValueLedger) -> None:
        self.server = server
        self.values = values  # authentication values; rotations replace entries in place
        self.ledger = ledger
        self.owned: list[str] = []  # ids of tokens made during the run
        self.run = Run()

    async def request(
        self, connection: Connection, kind: str, method: str, path: str, **kw: Any
    ) -> Answer | None:
        started = time.perf_counter()
        try:
            answer = await connection.request(method, path, **kw)
        except (OSError, asyncio.IncompleteReadError) as error:
            self.run.errors.append(f"{kind}: {type(error).__name__} {error}")
            return None
        self.run.latencies.append(time.perf_counter() - started)
        self.run.statuses[answer.status] += 1
        self.run.kinds[kind] += 1
        if answer.status >= 500:
            self.run.errors.append(f"{kind}: {answer.status} {answer.body[:200]!r}")
        return answer

    def _issued(self, answer: Answer | None) -> str | None:
        if answer is None or answer.status != 200:
            return None
        body = answer.json()
        self.ledger.add(body["value"])
        return str(body["value"])

    async def caller(self, rng: random.Random, until: float) -> None:
        connection = Connection(self.server.host, self.server.port)
        admin = _key(self.server.admin)
        try:
            while time.monotonic() < until:
                await self.step(connection, rng, admin)
        finally:
            connection.close()

    async def step(
        self, connection: Connection, rng: random.Random, admin: list[tuple[str, str]]
    ) -> None:
        roll = rng.random()
        address = rng.choice(ADDRESSES)
        if roll < 0.85:
            value = rng.choice(self.values)
            await self.request(connection, "auth", "GET", SELF, headers=_key(value, address))
        elif roll < 0.90:
            junk = f"apitk_{rng.getrandbits(64):x}"
            await self.request(connection, "bad-auth", "GET", SELF, headers=_key(junk, address))
        elif roll < 0.94:
            body = {"name": f"load-{rng.getrandbits(32):x}", "permissions": [READ]}
            answer = await self.request(
                connection, "create", "POST", TOKENS, headers=admin, json_body=body
            )
            if self._issued(answer):
                assert answer is not None
                self.owned.append(answer.json()["id"])
        elif roll < 0.96 and self.owned:
            token_id = self.owned.pop(rng.randrange(len(self.owned)))
            await self.request(
                connection, "delete", "DELETE", f"{TOKENS}/{token_id}", headers=admin
            )
        elif roll < 0.98 and self.owned:
            token_id = rng.choice(self.owned)
            body = {"name": f"renamed-{rng.getrandbits(16):x}", "permissions": [READ]}
            await self.request(
                connection, "update", "POST", f"{TOKENS}/{token_id}", headers=admin, json_body=body
            )
        else:
            slot = rng.randrange(len(self.values))
            answer = await self.request(
                connection, "rotate", "POST", f"{SELF}/rotate", headers=_key(self.values[slot])
            )
            value = self._issued(answer)
            if value:
                self.values[slot] = value

    async def sample_memory(self, until: float, started: float) -> None:
        while time.monotonic() < until:
            self.run.rss.append((time.monotonic() - started, server_rss_kib(self.server.pid)))
            await asyncio.sleep(0.25)

    async def drive(self, seconds: float) -> float:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            self.sample_memory(until, started),
            *(self.caller(random.Random(n), until) for n in range(CONCURRENCY)),
        )
        return time.monotonic() - started


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def test_sustained_mixed_load_has_no_server_errors_and_memory_settles(
    hardened_factory: ServerFactory,
    database_url: str,
    backend: str,
    client: ClientFactory,
    ledger: ValueLedger,
    figures: Figures,
) -> None:
    server = hardened_factory(database_url)
    admin = client(server, server.admin)
    values = [create(admin, f"load-auth-{n}", [READ])["value"] for n in range(20)]
    values += [
        create(admin, f"load-fenced-{n}", [READ], allowedCIDRBlocks=["203.0.113.0/24"])["value"]
        for n in range(5)
    ]
    load = Load(server, values, ledger)
    asyncio.run(load.drive(1.0))  # warm-up: connections, caches, lazy imports
    load.run = Run()
    elapsed = asyncio.run(load.drive(DURATION_SECONDS))
    run = load.run

    total = sum(run.statuses.values())
    half = DURATION_SECONDS / 2
    first = max(kib for at, kib in run.rss if at < half)
    second = max(kib for at, kib in run.rss if at >= half)
    figures.add(
        f"mixed load ({backend}), {CONCURRENCY} callers, {elapsed:.0f} s",
        f"{total / elapsed:.0f} req/s; p50 {statistics.median(run.latencies) * 1000:.1f} ms, "
        f"p99 {_percentile(run.latencies, 0.99) * 1000:.1f} ms; "
        f"{dict(sorted(run.statuses.items()))}",
    )
    figures.add(
        f"mixed load ({backend}) server RSS",
        f"first half peak {first / 1024:.1f} MiB, second half peak {second / 1024:.1f} MiB "
        f"(bound +{RSS_GROWTH_BOUND_KIB // 1024} MiB); writes {dict(run.kinds)}",
    )
    assert not run.errors, run.errors[:10]
    assert run.kinds["auth"] > 0.5 * total
    # 404: a rename or rotation that lost a race with a concurrent delete of its token.
    assert set(run.statuses) <= {200, 204, 401, 403, 404}, run.statuses
    assert second - first <= RSS_GROWTH_BOUND_KIB, f"RSS grew {second - first} KiB"
    assert admin.get(SELF).status_code == 200
