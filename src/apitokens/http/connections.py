"""No connection is free: deadlines for request heads, and a bound on connections.

uvicorn's httptools protocol, as it comes, holds a connection that sends nothing, or sends
its head a byte at a time, for as long as the client likes; a few thousand of them use up
the process's file descriptors. ``GuardedHttpToolsProtocol`` adds, per connection:

- **A request deadline.** A request's head must be complete within ``head_timeout``
  seconds of the connection being accepted (the first request) or of its first byte
  (later requests on a kept-alive connection), and its body (at most
  ``Settings.max_body_bytes``) within as long again; otherwise the connection is closed.
  Idle kept-alive connections are closed by uvicorn's own keep-alive timeout.
- **A bound on connections.** Beyond ``max_connections`` open connections in this
  process, a request gets ``503`` (``Retry-After: 1``, connection closed) instead of
  being served; beyond that plus ``OVERFLOW`` the connection is closed as soon as it is
  accepted, so the descriptors the process needs for its database and logs stay free.

- **One write per response.** uvicorn writes a response's head and its body with two
  ``transport.write`` calls: two system calls and two TCP segments per answer. The
  head is held back and written with the first part of the body (an answer without one,
  such as the answer to a HEAD request, has its head written when the response ends; and
  anything else that touches the connection writes it first). Interim ``100 Continue``
  answers are never held.

It keeps the 431 of ``BoundedHttpToolsProtocol`` (heads over 64 KiB). The values come
from the uvicorn ``Config`` (``serving.ServingConfig``), attributes ``head_timeout`` and
``max_connections``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from apitokens.http.head_limit import BoundedHttpToolsProtocol

log = logging.getLogger("apitokens.connections")

OVERFLOW = 256
"""Connections past ``max_connections`` that are still accepted, to be answered 503."""

_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})

_UNAVAILABLE = orjson.dumps(
    {
        "message": "the server is at its connection limit; retry shortly",
        "code": "unavailable",
    }
)


async def connection_limit_reached(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app that answers a request arriving on a connection over the bound."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_UNAVAILABLE)).encode("ascii")),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE})


class GuardedHttpToolsProtocol(BoundedHttpToolsProtocol):
    """httptools with a request deadline and a bound on open connections (see module).

    **One lazy timer per connection.** Each connection has one moment at which it is
    closed unless something happens first (``_due``): the head deadline while a head is
    read, the keep-alive timeout while the connection idles between requests, none while
    the app answers. Moving that moment is an attribute write; the one timer
    (``_timer``) fires at most every ``_tick`` seconds (the shorter of the two timeouts),
    closes the connection if its moment has passed, and otherwise is set again for the
    moment (or dropped, if there is none). uvicorn's own keep-alive handling makes and
    cancels a timer per request, and so did the head deadline: two timers made and
    cancelled per request, about 2.3 µs each with uvloop, for a deadline that almost
    never fires.
    """

    _timer: asyncio.TimerHandle | None = None
    _due: float | None = None
    _idle = False  # whether ``_due`` is the keep-alive timeout (not the head deadline)

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._head_timeout: float = config.head_timeout
        self._max_connections: int = config.max_connections
        self._tick = min(self._head_timeout, float(self.timeout_keep_alive))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_now = len(self.connections)
        if open_now > self._max_connections + OVERFLOW:
            transport.close()  # not even a 503: keep descriptors for the database and logs
            return
        if open_now > self._max_connections:
            self.app = connection_limit_reached  # this connection's requests only
        self._close_in(self._head_timeout)  # the first head is due within this of the accept

    def connection_lost(self, exc: Exception | None) -> None:
        self._due = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._due is None:  # a later request on a kept-alive connection
            self._close_in(self._head_timeout)

    def on_headers_complete(self) -> None:
        if any(name in _BODY_HEADERS for name, _ in self.headers):
            self._close_in(self._head_timeout)  # the body gets as long again as the head had
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            one = _OneWrite(self.transport)
            cycle.transport = one  # type: ignore[assignment]
            cycle.on_response = one.flushing(cycle.on_response)

    def on_message_complete(self) -> None:
        self._due = None  # the app answers in its own time
        super().on_message_complete()

    # uvicorn's keep-alive timeout, on the same timer.

    def _unset_keepalive_if_required(self) -> None:
        if self._idle:
            self._due = None
            self._idle = False

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive timeout set on the connection's one timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        # No keep-alive moment is set while a response is being sent: nothing to unset.
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._close_in(self.timeout_keep_alive)
            self._idle = True

    # The timer.

    def _close_in(self, seconds: float) -> None:
        now = self.loop.time()
        self._due = now + seconds
        self._idle = False
        if self._timer is None:
            # Never later than any moment set before it fires: every wait is >= _tick.
            self._timer = self.loop.call_at(now + self._tick, self._check)

    def _check(self) -> None:
        due = self._due
        if due is None:
            self._timer = None
            return
        now = self.loop.time()
        if now < due:
            self._timer = self.loop.call_at(min(due, now + self._tick), self._check)
            return
        self._timer = None
        self._due = None
        if not self.transport.is_closing():
            self.transport.close()


class _OneWrite:
    """A transport that holds a response's head back until the body's first write.

    Everything else is the connection's transport: any other call writes what is held
    first, so nothing is ever reordered or lost.
    """

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._head = data  # the head of a final response: wait for its body
        else:
            self._transport.write(data)

    def flushing(self, on_response: Callable[[], None]) -> Callable[[], None]:
        """``on_response``, called once this response is complete, after writing what is
        held (an answer without a body write, such as the answer to a HEAD request).
        Per response: with pipelined requests the protocol's ``cycle`` is already the next
        one when this one completes."""

        def complete() -> None:
            self.flush()
            on_response()

        return complete

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self._transport, name)
