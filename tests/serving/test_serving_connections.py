"""No connection is free: silent, slow and idle connections are closed by the server, and
connections beyond the bound are answered 503 instead of hanging.

The flood is real sockets on loopback against a real ``apitokens serve``; the request
deadline is set to 1 s so the test stays short. Nothing here asserts a duration: the
server must close every flood connection (seen as end-of-file), and the valid caller must
be answered at all, within generous timeouts.
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_support import raise_own_open_file_limit

from support.processes import RunningServer
from support.protocols import ServerFactory

SILENT = 1000
SLOW = 1000
SLOW_BODIES = 20
IDLE = 20
CLOSE_WAIT_SECONDS = 60.0  # generous: the server has 1 s per connection
SELF = "/api-tokens/self"
CONNECTION_LIMIT = 20
OVERFLOW = 256  # apitokens.http.connections.OVERFLOW


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _connect(server: RunningServer, opened: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    opened.append(sock)
    return sock


@contextlib.contextmanager
def inherited_soft_limit(soft: int) -> Iterator[None]:
    """Children started meanwhile inherit this soft open-file limit."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def _open_file_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/<pid>/limits")


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_silent_slow_and_idle_connections_are_closed_while_a_valid_caller_is_served(
    server_factory: ServerFactory,
    sqlite_database_url: str,
    sockets: list[socket.socket],
) -> None:
    limit = raise_own_open_file_limit()
    if limit < SILENT + SLOW + SLOW_BODIES + IDLE + 100:
        pytest.skip(f"this process may open only {limit} files")
    env = {"APITOKENS_HEAD_TIMEOUT_SECONDS": "1", "APITOKENS_KEEP_ALIVE_SECONDS": "1"}
    server = server_factory(sqlite_database_url, env=env)

    silent = [_connect(server, sockets) for _ in range(SILENT)]
    slow = [_connect(server, sockets) for _ in range(SLOW)]
    for sock in slow:  # a head that never completes
        sock.sendall(b"GET /api-tokens/self HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow_bodies = [_connect(server, sockets) for _ in range(SLOW_BODIES)]
    for sock in slow_bodies:  # a complete head, a body that never completes
        sock.sendall(
            b"POST /api-tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
    idle = [_connect(server, sockets) for _ in range(IDLE)]
    for sock in idle:  # one request answered, then nothing: an idle kept-alive connection
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")

    with httpx.Client(base_url=server.url, timeout=30.0) as caller:
        answer = caller.get(SELF, headers={"X-API-Key": server.admin})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "admin"
    assert "server" not in answer.headers
    # A connection that keeps asking is never closed, however long it lasts: it makes a
    # request now and then while the flood waits out its deadlines below.
    busy = _connect(server, sockets)
    busy_request = f"GET {SELF} HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.admin}\r\n\r\n"
    busy_answers = 0
    busy_since = time.monotonic()

    def ask_on_busy() -> None:
        nonlocal busy_answers
        busy.sendall(busy_request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = busy.recv(65536)
            assert chunk, f"the busy connection was closed after {busy_answers} answers"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        busy_answers += 1

    ask_on_busy()

    # Every flood connection is closed by the server, the slow ones while they keep sending.
    groups = {"silent": silent, "slow": slow, "slow body": slow_bodies, "idle": idle}
    selector = selectors.DefaultSelector()
    for name, members in groups.items():
        for sock in members:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, name)
    still_open = {name: set(members) for name, members in groups.items()}
    received: dict[str, list[bytes]] = {name: [] for name in groups}
    deadline = time.monotonic() + CLOSE_WAIT_SECONDS
    while any(still_open.values()) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock, name = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            received[name].append(data)
            if not data:
                selector.unregister(sock)
                still_open[name].discard(sock)
        for sock in list(still_open["slow"]):  # keep trickling the endless head
            with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                sock.send(b"a")
        ask_on_busy()
    # Past both timeouts (1 s) more than twice over, the busy connection still answers
    # (the server's timers run in real time: a request every 0.2 s meanwhile).
    while time.monotonic() - busy_since < 2.5:
        for _ in selector.select(timeout=0.2):
            pass
        ask_on_busy()
    selector.close()
    assert {name: len(members) for name, members in still_open.items()} == dict.fromkeys(
        groups, 0
    ), "connections the server never closed"
    for name in ("silent", "slow", "idle"):  # closed without an answer
        assert set(received[name]) == {b""}, (name, set(received[name]))

    with httpx.Client(base_url=server.url, timeout=30.0) as caller:
        assert caller.get(SELF, headers={"X-API-Key": server.admin}).status_code == 200
    # A request cut off mid-body is the client's doing, not a server error.
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    cut_off = [line for line in lines if line.get("method") == "POST"]
    assert len(cut_off) == SLOW_BODIES
    assert all(line["status"] == 499 for line in cut_off), cut_off[:3]


def test_connections_beyond_the_bound_get_503_and_far_beyond_are_closed(
    server_factory: ServerFactory,
    sqlite_database_url: str,
    sockets: list[socket.socket],
) -> None:
    hard = raise_own_open_file_limit()
    env = {"APITOKENS_MAX_CONNECTIONS": str(CONNECTION_LIMIT)}
    with inherited_soft_limit(min(1024, hard)):  # the usual default soft limit
        server = server_factory(sqlite_database_url, env=env)
    assert _open_file_limits(server.pid) == (hard, hard), "the server raised its soft limit"
    request = f"GET {SELF} HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.admin}\r\n\r\n".encode()

    # The kernel hands connections to the server in the order they were made.
    for _ in range(CONNECTION_LIMIT):
        _connect(server, sockets)
    beyond = _connect(server, sockets)
    beyond.sendall(request)
    answer = _read_until_closed(beyond)  # answered, then closed by the server
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert json.loads(body) == {
        "message": "the server is at its connection limit; retry shortly",
        "code": "unavailable",
    }
    assert headers["retry-after"] == "1"
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert "server" not in headers

    # Far beyond the bound a connection is closed at once, without an answer.
    for _ in range(OVERFLOW):
        _connect(server, sockets)
    far_beyond = _connect(server, sockets)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        far_beyond.sendall(request)
    assert _read_until_closed(far_beyond) == b""

    # Once the held connections go away, callers are served again.
    for sock in sockets:
        sock.close()
    deadline = time.monotonic() + 30.0
    with httpx.Client(base_url=server.url, timeout=10.0) as caller:
        while True:
            status = caller.get(SELF, headers={"X-API-Key": server.admin}).status_code
            if status == 200 or time.monotonic() > deadline:
                break
            assert status == 503
    assert status == 200


def _read_head(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_interim_and_bodyless_answers_are_sent_at_once(
    sqlite_server: RunningServer, sockets: list[socket.socket]
) -> None:
    # Each answer is one write (head and body together): an interim answer must not wait
    # for a body that the client sends only after it, and an answer without a body (HEAD)
    # must not wait for one either.
    server = sqlite_server
    body = json.dumps({"name": "continued", "permissions": []}).encode()
    sock = _connect(server, sockets)
    sock.sendall(
        b"POST /api-tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nX-API-Key: " + server.admin.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    assert _read_head(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(body)
    # Then an answer with no body at all (HEAD), and a last one.
    sock.sendall(b"HEAD /verify HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.sendall(b"GET /api-tokens/self HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answers = _read_until_closed(sock).split(b"HTTP/1.1 ")
    assert [answer[:3] for answer in answers if answer] == [b"200", b"401", b"401"]
    created = json.loads(answers[1].split(b"\r\n\r\n", 1)[1])
    assert created["name"] == "continued"
