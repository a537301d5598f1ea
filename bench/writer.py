"""Another client that changes tokens at a fixed rate while the readers are measured.

Run as ``BENCH_KEY=<admin value> python -m bench.writer URL SECONDS RATE``: for SECONDS,
it sends RATE writes a second (open loop: each write starts on its tick whatever the
previous ones take), each one a create, an update or a delete of a token *it* created, so
the readers' tokens are never changed. Creates come first; a token is updated once its
create answered and deleted once its update answered. Prints ``started``, then one JSON
line: the writes by kind and status, the rate achieved and the writes' latencies.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter, deque

import httpx

DRAIN_SECONDS = 20.0


async def write(url: str, key: str, seconds: float, rate: float) -> dict[str, object]:
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    created: deque[str] = deque()
    updated: deque[str] = deque()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, timeout=30.0, limits=limits
    ) as client:

        async def send(kind: str, method: str, path: str, body: object | None, i: int) -> None:
            began = time.monotonic()
            try:
                answer = await client.request(method, path, json=body)
            except httpx.HTTPError as error:
                statuses[f"{kind} {type(error).__name__}"] += 1
                return
            latencies.append(time.monotonic() - began)
            statuses[f"{kind} {answer.status_code}"] += 1
            if kind == "create" and answer.status_code == 200:
                created.append(answer.json()["id"])
            elif kind == "update" and answer.status_code == 200:
                updated.append(path.rsplit("/", 1)[1])

        def next_write(i: int) -> tuple[str, str, str, object | None]:
            if i % 3 == 2 and updated:
                return "delete", "DELETE", f"/api-tokens/{updated.popleft()}", None
            if i % 3 == 1 and created:
                body = {"name": f"bench-writer-{i}", "permissions": ["AlertRead", "RuleRead"]}
                return "update", "POST", f"/api-tokens/{created.popleft()}", body
            body = {"name": f"bench-writer-{i}", "permissions": ["AlertRead"]}
            return "create", "POST", "/api-tokens", body

        (await client.get("/healthz")).raise_for_status()  # connected
        print("started", flush=True)
        started = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while (tick := started + i / rate) < started + seconds:
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            task = asyncio.create_task(send(*next_write(i), i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        elapsed = time.monotonic() - started
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
    latencies.sort()
    return {
        "writes": i,
        "seconds": round(elapsed, 2),
        "rate": round(i / elapsed, 1) if elapsed else 0.0,
        "statuses": dict(sorted(statuses.items())),
        "unanswered": len(tasks),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def main() -> None:
    url, seconds, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(write(url, os.environ["BENCH_KEY"], seconds, rate))), flush=True)


if __name__ == "__main__":
    main()
