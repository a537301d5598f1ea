"""A flood of distinct, well-formed, never-stored token values, from many source addresses.

Run as ``python -m bench.flood PORT SECONDS CONNECTIONS SOURCES [PREFIX]``. Only ever
127.0.0.1:PORT is the target. ``CONNECTIONS`` keep-alive connections send
``GET /api-tokens/self`` with a fresh value each (``ValueCodec(prefix).issue().value``: the
right prefix, length and checksum, so only the database, or the server's filter of stored
digests, can tell it is unknown), one request at a time per connection, for SECONDS.

``SOURCES``: ``many``: every connection binds a new source address in
127.1.0.0-127.200.255.255 (from a random start, so runs in the same minute do not share
addresses) and sends ``PER_ADDRESS`` requests before it reconnects from the next one, so no address
reaches the server's failure limit (30 a minute by default) and every value is looked at;
``one``: every connection binds 127.0.0.2 and keeps it (the failure limiter answers 429
after the first 30). The readers being measured connect from 127.0.0.1, never limited.

Prints ``started`` once the first connections are open, then one JSON line: the answers by
status, errors, addresses used and the rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator

import uvloop

from apitokens.domain.values import ValueCodec

TARGET = "127.0.0.1"
PER_ADDRESS = 20
MAX_REQUESTS = 5_000_000  # a bound whatever the duration


def sources(kind: str) -> Iterator[str]:
    if kind == "one":
        while True:
            yield "127.0.0.2"
    k = random.randrange(1 << 24)  # each run its own addresses: the limiter's window is 60 s
    while True:
        k += 1
        yield f"127.{1 + (k >> 16) % 200}.{(k >> 8) & 255}.{k & 255}"


async def flood(
    port: int, seconds: float, connections: int, kind: str, prefix: str
) -> dict[str, object]:
    codec = ValueCodec(prefix)
    answers: Counter[str] = Counter()
    addresses = sources(kind)
    used: set[str] = set()
    per_connection = PER_ADDRESS if kind == "many" else MAX_REQUESTS
    head = f"GET /api-tokens/self HTTP/1.1\r\nHost: {TARGET}:{port}\r\nX-API-Key: ".encode()
    sent = 0
    ready = asyncio.Event()
    deadline = float("inf")

    async def connection() -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < MAX_REQUESTS:
            source = next(addresses)
            used.add(source)
            try:
                reader, writer = await asyncio.open_connection(TARGET, port, local_addr=(source, 0))
            except OSError as error:
                answers[f"connect {type(error).__name__}"] += 1
                await asyncio.sleep(0.01)
                continue
            ready.set()
            try:
                for _ in range(per_connection):
                    if time.monotonic() >= deadline or sent >= MAX_REQUESTS:
                        break
                    writer.write(head + codec.issue().value.encode() + b"\r\n\r\n")
                    sent += 1
                    answer = await reader.readuntil(b"\r\n\r\n")
                    lines = answer.decode("latin-1").lower().split("\r\n")
                    answers[lines[0][9:12]] += 1
                    length, close = 0, False
                    for line in lines[1:]:
                        if line.startswith("content-length:"):
                            length = int(line[15:])
                        elif line.startswith("connection:") and "close" in line:
                            close = True
                    if length:
                        await reader.readexactly(length)
                    if close:
                        break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                answers[f"error {type(error).__name__}"] += 1
            finally:
                writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.wait_for(ready.wait(), timeout=30)
    print("started", flush=True)
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.wait(tasks, timeout=seconds + 30)
    elapsed = time.monotonic() - started
    answered = sum(n for status, n in answers.items() if status.isdigit())
    return {
        "sent": sent,
        "answered": answered,
        "rate": round(answered / elapsed, 1),
        "seconds": round(elapsed, 2),
        "answers": dict(sorted(answers.items())),
        "addresses": len(used),
    }


def main() -> None:
    port, seconds, connections, kind = (
        int(sys.argv[1]),
        float(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4],
    )
    prefix = sys.argv[5] if len(sys.argv) > 5 else "apitk"
    if kind not in ("many", "one"):
        raise SystemExit("SOURCES is many or one")
    print(json.dumps(uvloop.run(flood(port, seconds, connections, kind, prefix))), flush=True)


if __name__ == "__main__":
    main()
