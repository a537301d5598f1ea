"""Oversized requests and hostile input: refused with 4xx, never a 5xx, the server stays up.

- A request head (request line and headers) over 64 KiB gets 431 (src/apitokens/http/
  head_limit.py); uvicorn's httptools would otherwise buffer a head of any size.
- A body over 64 KiB gets 413 before anything parses it, whether it declares its length
  or streams it chunked.
- Input that once reached the database or the clock unchecked (found while building these
  suites) stays a 400.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from hardening_support import SELF, TOKENS, refused, rss_kib, spec

from support.inprocess import InProcessServer
from support.processes import RunningServer

ClientFactory = Callable[..., httpx.Client]
BODY_LIMIT = 64 * 1024
HEAD_LIMIT = 64 * 1024


@pytest.fixture
def server(hardened_app: InProcessServer) -> InProcessServer:
    """The app in process, for what the app itself refuses (bodies, input)."""
    return hardened_app


@pytest.fixture
def admin(server: InProcessServer, client: ClientFactory) -> httpx.Client:
    return client(server, server.admin)


@pytest.fixture
def process(hardened_process: RunningServer) -> RunningServer:
    """A server process, for the request heads and raw bytes that uvicorn reads."""
    return hardened_process


@pytest.fixture
def process_admin(process: RunningServer, client: ClientFactory) -> httpx.Client:
    return client(process, process.admin)


def _raw(server: RunningServer, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a new connection; return the first answer (head and body), or
    what came before the server closed the connection."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # refused mid-send: read what it answered below
        received = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                if _ and len(body) >= _content_length(head):
                    break
    return received


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def _alive(admin: httpx.Client) -> None:
    assert admin.get(SELF).status_code == 200


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
def test_attack_oversized_header_is_refused_and_the_server_stays_up(
    process_admin: httpx.Client, size: int
) -> None:
    answer = process_admin.get(SELF, headers={"X-Padding": "a" * size})
    assert refused(answer, 431).startswith("request headers too large")
    _alive(process_admin)


def test_attack_many_headers_and_a_long_url_are_refused(
    process: RunningServer, process_admin: httpx.Client
) -> None:
    many = [(f"X-H{index}", "v" * 100) for index in range(1000)]
    assert process_admin.get(SELF, headers=many).status_code == 431
    long_url = f"GET {TOKENS}/{'a' * (HEAD_LIMIT + 1)} HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _status_line(_raw(process, long_url.encode())).startswith("HTTP/1.1 431")
    assert process_admin.get(SELF, headers={"X-Padding": "a" * 30_000}).status_code == 200
    _alive(process_admin)


def test_attack_endless_header_is_cut_off_without_growing_memory(
    process: RunningServer, process_admin: httpx.Client
) -> None:
    """A 20 MB header line, sent as fast as the server reads it: the server closes the
    connection after about a megabyte and its memory does not grow by the header's size."""
    before = rss_kib(process.pid)
    head = b"GET /api-tokens/self HTTP/1.1\r\nHost: x\r\nX-Padding: "
    answer = _raw(process, head + b"a" * (20 * 1024 * 1024) + b"\r\n\r\n")
    assert answer == b"" or _status_line(answer).startswith("HTTP/1.1 431"), answer[:200]
    grown = rss_kib(process.pid) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"
    _alive(process_admin)


def test_attack_oversized_body_is_refused(server: InProcessServer, admin: httpx.Client) -> None:
    body = json.dumps(spec("x" * BODY_LIMIT, [])).encode()
    declared = admin.post(TOKENS, content=body, headers={"Content-Type": "application/json"})
    assert "too large" in refused(declared, 413)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = admin.post(TOKENS, content=chunks(), headers={"Content-Type": "application/json"})
    assert refused(streamed, 413)
    leaked = admin.post("/leaked-values", content=b'{"value":"' + b"a" * BODY_LIMIT + b'"}')
    assert refused(leaked, 413)
    _alive(admin)


def test_attack_body_that_claims_gigabytes_is_refused_at_once(process: RunningServer) -> None:
    head = (
        f"POST {TOKENS} HTTP/1.1\r\nHost: x\r\nX-API-Key: {process.admin}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n"
    ).encode()
    answer = _raw(process, head + b'{"name":', timeout=10.0)
    assert _status_line(answer).startswith("HTTP/1.1 413"), answer[:200]


def test_attack_malformed_http_is_a_4xx(
    process: RunningServer, process_admin: httpx.Client
) -> None:
    for request in (
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /api-tokens/self HTTP/1.1\r\nHost: x\r\nX-API-Key: a\x00b\r\n\r\n",
        b"POST /api-tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST /api-tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        status = _status_line(_raw(process, request))
        assert status == "" or status.split(" ")[1].startswith("4"), (request, status)
    _alive(process_admin)


# -- input found to cause server errors (kept as regressions) -----------------------------


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_bad_input_grace_period_beyond_any_time_span_is_400(admin: httpx.Client) -> None:
    """``timedelta(seconds=10**20)`` overflows: the bound is checked before it is built."""
    for seconds in (10**20, 2**63, 604801, -1):
        answer = admin.post(f"{SELF}/rotate", params={"gracePeriodSeconds": seconds})
        assert "gracePeriodSeconds" in refused(answer, 400)
    _alive(admin)


@pytest.mark.parametrize(
    "cursor",
    [str(10**30), str(2**63), "-1", "1.5", "+1", " 1", "", "\u0661", _cursor({"e": 1})],
)
def test_bad_input_audit_cursor_out_of_range_is_400(admin: httpx.Client, cursor: str) -> None:
    """A crafted cursor with an id beyond 64 bits once reached the database (500)."""
    answer = admin.get("/audit-events", params={"cursor": cursor})
    assert "cursor" in refused(answer, 400)


MAX_MICROS = 315537897599999999  # 9999-12-31T23:59:59.999999Z, from 0001-01-01


@pytest.mark.parametrize(
    ("cursor", "status"),
    [
        (f"{MAX_MICROS}.x", 200),  # well-formed: the page after the end of time
        ("0.x", 200),
        (f"{MAX_MICROS + 1}.x", 400),  # beyond the calendar
        (f"{10**30}.x", 400),
        ("12.\u0000", 400),
        ("12." + "x" * 65, 400),
        ("1.2.3", 400),
        ("12.\u0661", 400),
        (_cursor({"t": "9999-12-31T23:59:59+00:00", "i": "x"}), 400),  # an earlier format
        ("", 400),
    ],
)
def test_bad_input_crafted_list_cursor_is_never_a_server_error(
    admin: httpx.Client, cursor: str, status: int
) -> None:
    answer = admin.get(TOKENS, params={"cursor": cursor})
    assert answer.status_code == status, answer.text


def test_bad_input_nul_in_ids_and_filters_is_not_a_server_error(admin: httpx.Client) -> None:
    """PostgreSQL refuses NUL in text: every place an id reaches a query must stop it."""
    for method, path in (
        ("GET", f"{TOKENS}/a%00b"),
        ("POST", f"{TOKENS}/a%00b/rotate"),
        ("DELETE", f"{TOKENS}/a%00b"),
    ):
        assert refused(admin.request(method, path), 404)
    update = admin.post(f"{TOKENS}/a%00b", json=spec("x", []))
    assert refused(update, 404)
    events = admin.get("/audit-events", params={"tokenId": "a\x00b"})
    assert events.status_code == 200 and events.json()["results"] == []
    names = admin.post(TOKENS, json=spec("a\x00b", []))
    assert "name" in refused(names, 400)
    blocks = admin.post(TOKENS, json=spec("x", [], allowedCIDRBlocks=["10.0.0.0/8\x00"]))
    assert "allowedCIDRBlocks" in refused(blocks, 400)
    report = admin.post("/leaked-values", json={"value": "apitk_\x00"})
    assert report.status_code == 202
    assert refused(admin.get("/verify", params={"permission": "a\x00"}), 400)
    _alive(admin)
