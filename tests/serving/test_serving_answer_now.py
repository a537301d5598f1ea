"""Answers made at once (``HotPaths.answer_now``) by the server's protocol
(``http.connections.GuardedHttpToolsProtocol``), without an ASGI request cycle.

A real uvicorn ``Server`` with that protocol, in this process, on a loopback port, driven
over raw connections: the answers made at once are the bytes uvicorn sends for the app's
own answer to the same request, pipelined requests are answered in the order they came
whichever way each is answered, and only a whole bodyless GET on a kept-alive connection
whose answer is ready (a known value that passes) is answered this way. The app below
counts the requests that reach it through ASGI, which is how a test tells the two ways
apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from apitokens.bootstrap import create_admin_token
from apitokens.domain.values import ValueCodec
from apitokens.http import routes_tokens
from apitokens.http.app import create_app
from apitokens.http.connections import GuardedHttpToolsProtocol
from apitokens.http.hotpaths import HotPaths
from apitokens.serving import with_hot_paths
from apitokens.settings import Settings
from support.processes import LOOPBACK, free_port

SELF = "/api-tokens/self"


class Counted:
    """``HotPaths`` counting the requests that reach it as ASGI calls."""

    def __init__(self, hot: HotPaths) -> None:
        self.hot = hot
        self.calls = 0

    def answer_now(self, scope: Any) -> Any:
        return self.hot.answer_now(scope)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.hot(scope, receive, send)


class Served:
    def __init__(self, app: Counted, port: int, admin: str) -> None:
        self.app = app
        self.port = port
        self.admin = admin

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(LOOPBACK, self.port)

    async def known(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection on which the admin value has been used once: known from here on."""
        reader, writer = await self.connect()
        writer.write(self.get(SELF, self.admin))
        await answer(reader)
        return reader, writer

    def get(
        self, path: str, key: str | None = None, extra: str = "", version: str = "1.1"
    ) -> bytes:
        head = f"GET {path} HTTP/{version}\r\nHost: x\r\n"
        if key is not None:
            head += f"X-API-Key: {key}\r\n"
        return (head + extra + "\r\n").encode()


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, head_timeout: float = 30.0, keep_alive: int = 5
) -> AsyncIterator[Served]:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/apitokens.db", refusal_delay_seconds=0)
    admin = create_admin_token(settings, "admin").value
    app = Counted(with_hot_paths(create_app(settings)))
    port = free_port()
    config = uvicorn.Config(
        app,
        host=LOOPBACK,
        port=port,
        http=GuardedHttpToolsProtocol,
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=keep_alive,
    )
    config.head_timeout = head_timeout  # type: ignore[attr-defined]
    config.max_connections = 100  # type: ignore[attr-defined]
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve())
    while not server.started:  # the app's start-up (the database) runs on threads
        assert not running.done(), running
        await asyncio.sleep(0.01)
    try:
        yield Served(app, port, admin)
    finally:
        server.should_exit = True
        await running


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as made:
        yield made


async def answer(
    reader: asyncio.StreamReader, head_only: bool = False
) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """One response: status line, headers (name lower-cased), body (by Content-Length; none
    for the answer to a HEAD request, ``head_only``)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = [tuple(line.split(b": ", 1)) for line in lines]
    length = next((int(value) for name, value in headers if name.lower() == b"content-length"), 0)
    body = await reader.readexactly(length) if length and not head_only else b""
    return status, [(name.lower(), value) for name, value in headers], body  # type: ignore[misc]


def _comparable(headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    """Headers without the date's value and ``connection: close``; body without lastUsedAt."""
    kept = [(name, b"(now)" if name == b"date" else value) for name, value in headers]
    kept = [pair for pair in kept if pair != (b"connection", b"close")]
    text = re.sub(rb'"lastUsedAt":"[^"]*"', b'"lastUsedAt":"(moves)"', body)
    return kept, text


async def test_an_answer_made_at_once_is_the_bytes_of_the_app_s_answer(served: Served) -> None:
    key = served.admin
    for path in (SELF, "/verify", "/verify?permission=OrganizationAPITokenRead"):
        reader, writer = await served.connect()
        writer.write(served.get(path, key))  # the first use: looked up, through ASGI
        first = await answer(reader)
        calls = served.app.calls
        writer.write(served.get(path, key))  # known now, kept alive: answered at once
        at_once = await answer(reader)
        assert served.app.calls == calls, path
        writer.write(served.get(path, key, "Connection: close\r\n"))  # through ASGI
        closing = await answer(reader)
        assert served.app.calls == calls + 1, path
        assert await reader.read() == b""  # and closed
        writer.close()
        assert at_once[0] == first[0] == closing[0], path
        assert _comparable(*at_once[1:]) == _comparable(*closing[1:]) == _comparable(*first[1:])
        assert (b"connection", b"close") in closing[1]
        assert next(name for name, _ in at_once[1]) == b"date"  # uvicorn's default header first
    assert at_once[0] == b"HTTP/1.1 204 No Content"
    assert dict(at_once[1])[b"x-token-name"] == b"admin"


async def test_pipelined_requests_are_answered_in_order_whichever_way(served: Served) -> None:
    key = served.admin
    async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{served.port}") as client:
        me = (await client.get(SELF, headers={"X-API-Key": key})).json()
        other = (
            await client.post(
                "/api-tokens", headers={"X-API-Key": key}, json={"name": "other", "permissions": []}
            )
        ).json()
    unknown = ValueCodec("apitk").issue().value
    requests = [
        served.get(SELF, key),  # at once
        served.get(f"/api-tokens/{other['id']}", key),  # FastAPI, a database read on a thread
        served.get(SELF, key),  # behind it: queued, then through ASGI
        served.get("/verify", unknown),  # refused
        served.get(SELF, other["value"]),  # its first use: looked up
        served.get("/verify", key),
        served.get(SELF, key),
    ]
    reader, writer = await served.connect()
    calls = served.app.calls
    writer.write(b"".join(requests))  # one write: the server reads them together
    answers = [await answer(reader) for _ in requests]
    statuses = [status.split(b" ")[1] for status, _, _ in answers]
    assert statuses == [b"200", b"200", b"200", b"401", b"200", b"204", b"200"]
    names = [json.loads(body).get("name") if body else None for _, _, body in answers]
    assert names == ["admin", "other", "admin", None, "other", None, "admin"]
    assert "message" in json.loads(answers[3][2])
    assert dict(answers[5][1])[b"x-token-id"] == me["id"].encode()
    assert served.app.calls - calls >= 4  # at least the ones that could not be answered at once
    # Alone again on the connection, a ready answer is made at once.
    calls = served.app.calls
    writer.write(served.get(SELF, other["value"]))
    assert json.loads((await answer(reader))[2])["name"] == "other"
    assert served.app.calls == calls
    writer.close()


async def test_an_answer_made_at_once_goes_out_before_a_refusal_that_follows_it(
    served: Served,
) -> None:
    key = served.admin
    reader, writer = await served.known()
    # A ready answer, then junk the parser refuses, read together: the answer is sent
    # first, then uvicorn's 400, and the connection is closed.
    writer.write(served.get(SELF, key) + b"NOT HTTP AT ALL\r\n\r\n")
    status, _, body = await answer(reader)
    assert status == b"HTTP/1.1 200 OK" and json.loads(body)["name"] == "admin"
    status, _, body = await answer(reader)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert body == b"Invalid HTTP request received."
    assert await reader.read() == b""
    writer.close()


async def test_only_a_whole_bodyless_kept_alive_get_with_a_ready_answer_is_made_at_once(
    served: Served,
) -> None:
    key = served.admin
    reader, writer = await served.known()
    calls = served.app.calls
    through_asgi = [
        (served.get(SELF, ValueCodec("apitk").issue().value), b"401"),  # unknown
        (served.get(SELF), b"401"),  # no key
        (served.get(SELF, key, "Content-Length: 2\r\n") + b"{}", b"200"),  # a body
        (b"HEAD " + served.get(SELF, key)[4:], b"200"),  # not a GET
        (served.get("/verify?permission=NoSuchPermission", key), b"400"),
        (served.get("/api-tokens/self/", key), b"404"),  # another path
    ]
    for request, status in through_asgi:
        writer.write(request)
        got = await answer(reader, head_only=request.startswith(b"HEAD"))
        assert got[0].split(b" ")[1] == status, request
    assert served.app.calls == calls + len(through_asgi)
    writer.write(served.get(SELF, key))
    assert (await answer(reader))[0] == b"HTTP/1.1 200 OK"
    assert served.app.calls == calls + len(through_asgi)  # and at once again
    writer.close()
    # HTTP/1.0 (the connection closes after the answer): through ASGI.
    reader, writer = await served.connect()
    writer.write(served.get(SELF, key, version="1.0"))
    status, _, body = await answer(reader)
    assert status == b"HTTP/1.1 200 OK" and json.loads(body)["name"] == "admin"
    assert served.app.calls == calls + len(through_asgi) + 1
    assert await reader.read() == b""
    writer.close()


async def test_a_request_begun_behind_an_answer_made_at_once_keeps_its_deadline(
    tmp_path: Path,
) -> None:
    """The answer completes while the next request's first byte is already read: that
    request's head deadline must hold (it was once replaced by the keep-alive timeout and
    then dropped by the next byte, leaving a connection open for good)."""
    async with serving(tmp_path, head_timeout=0.5, keep_alive=30) as served:
        reader, writer = await served.known()
        writer.write(served.get(SELF, served.admin) + b"G")  # an answer, then a head begun
        status, _, _ = await answer(reader)
        assert status == b"HTTP/1.1 200 OK"
        writer.write(b"E")  # and one more byte, then nothing
        closed = await asyncio.wait_for(reader.read(), timeout=20)  # 0.5 s deadline
        assert closed == b""
        writer.close()
        # A refusal answered before its body is all in: the body keeps its deadline too.
        reader, writer = await served.connect()
        writer.write(
            b"POST /api-tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n{"
        )
        status, _, _ = await answer(reader)
        assert status.split(b" ")[1] in (b"401", b"413")
        writer.write(b"x")
        assert await asyncio.wait_for(reader.read(), timeout=20) == b""
        writer.close()


async def test_a_failure_after_the_use_is_recorded_is_a_500_and_not_retried(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = served.admin
    reader, writer = await served.known()

    def broken(*args: Any) -> Any:
        raise RuntimeError("rendering failed")

    # Before the use is recorded: the request goes the ASGI way, which answers it.
    monkeypatch.setattr(routes_tokens, "cached_principal", broken)
    calls = served.app.calls
    writer.write(served.get(SELF, key))
    status, _, body = await answer(reader)
    assert (status, json.loads(body)["name"]) == (b"HTTP/1.1 200 OK", "admin")
    assert served.app.calls == calls + 1
    monkeypatch.undo()
    # After it: as uvicorn answers an application that fails, and not tried again.
    monkeypatch.setattr(routes_tokens, "token_response", broken)
    calls = served.app.calls
    writer.write(served.get(SELF, key))
    status, headers, body = await answer(reader)
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert body == b"Internal Server Error" and (b"connection", b"close") in headers
    assert await reader.read() == b""
    assert served.app.calls == calls
    writer.close()


async def test_many_pipelined_answers_made_at_once_all_arrive_in_order(served: Served) -> None:
    """More answers in one read than the transport's high-water mark: they go out in order
    (the held answers are handed to the transport early, and flow control takes over)."""
    key = served.admin
    reader, writer = await served.known()
    count = 400
    paths = [SELF if index % 2 else "/verify" for index in range(count)]
    writer.write(b"".join(served.get(path, key) for path in paths))
    statuses = [(await answer(reader))[0].split(b" ")[1] for _ in paths]
    assert statuses == [b"200" if path == SELF else b"204" for path in paths]
    writer.close()
