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
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from apitokens.http.head_limit import BoundedHttpToolsProtocol

log = logging.getLogger("apitokens.connections")

OVERFLOW = 256
"""Connections past ``max_connections`` that are still accepted, to be answered 503."""

_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})

_INTERNAL_ERROR = [  # uvicorn's own answer's headers when an application fails unanswered
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"21"),
    (b"connection", b"close"),
]

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
    # The app's ``answer_now`` (``http.hotpaths.HotPaths``), if it has one; and whether the
    # request whose cycle starts now may be answered by it.
    _answer_now: Callable[[Scope], Response | None] | None = None
    _may_answer_now = False
    _held: list[bytes] | None = None  # answers to write at the end of this turn of the loop
    _held_bytes = 0
    _in_message = False  # between a message's first byte and its end
    _outbox: _Outbox

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
        self._answer_now = getattr(self.app, "answer_now", None)
        self._outbox = _Outbox.of(self.loop)
        self._close_in(self._head_timeout)  # the first head is due within this of the accept

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = None
        self._due = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = True
        if self._due is None or self._idle:  # a later request on a kept-alive connection
            self._close_in(self._head_timeout)

    def on_headers_complete(self) -> None:
        bodyless = True
        if any(name in _BODY_HEADERS for name, _ in self.headers):
            self._close_in(self._head_timeout)  # the body gets as long again as the head had
            bodyless = False
        # uvicorn's makes the request's cycle and starts it (``_start_asgi_task``) unless
        # a request before it on this connection is still being answered.
        self._may_answer_now = bodyless and self._answer_now is not None
        try:
            super().on_headers_complete()
        finally:
            self._may_answer_now = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        may_answer_now, self._may_answer_now = self._may_answer_now, False
        if may_answer_now and cycle.keep_alive and app is self.app and not self.flow.write_paused:
            assert self._answer_now is not None
            try:
                response = self._answer_now(cycle.scope)  # type: ignore[arg-type]
            except Exception as error:  # after the use was recorded: not to be tried again
                self._fail_now(cycle, error)
                return
            if response is not None:
                self._write_now(cycle, response)
                return
        self.write_held()  # an answer made earlier in this turn goes first
        if cycle.transport is self.transport:
            one = _OneWrite(self.transport)
            cycle.transport = one  # type: ignore[assignment]
            cycle.on_response = one.flushing(cycle.on_response)
        super()._start_asgi_task(cycle, app)

    def _write_now(self, cycle: RequestResponseCycle, response: Response) -> None:
        """Send an answer of ``answer_now`` as uvicorn's ``send`` would send it (status line,
        uvicorn's default headers, the response's, the body: one write) and complete the
        request as uvicorn completes one."""
        self._hold(self._framed(response.status_code, response.raw_headers, response.body))
        cycle.response_started = cycle.response_complete = True
        self.on_response_complete()

    def _framed(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview[int]
    ) -> bytes:
        """Status line, uvicorn's default headers, ``headers``, the body: one write."""
        content: list[bytes | memoryview[int]] = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *headers):
            content += (name, b": ", value, b"\r\n")
        content += (b"\r\n", body)
        return b"".join(content)

    def _fail_now(self, cycle: RequestResponseCycle, error: Exception) -> None:
        """What uvicorn does when an application fails before it answers: log the error
        with its traceback, answer 500 and close the connection."""
        self.logger.error("Exception in ASGI application\n", exc_info=error)
        self.write_held()
        self.transport.write(self._framed(500, _INTERNAL_ERROR, b"Internal Server Error"))
        cycle.response_started = cycle.response_complete = True
        self.transport.close()

    # Answers of ``answer_now`` wait for the end of this turn of the event loop, and are
    # written then, a connection's in the order they were made (``_Outbox``).

    def _hold(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._outbox.add(self)
            return
        held.append(data)  # pipelined requests answered in the same turn: one write
        self._held_bytes += len(data)
        if self._held_bytes > HIGH_WATER_LIMIT:
            # Into the transport now: its own high-water mark then pauses this
            # connection's answers (``flow.write_paused``) until the client reads.
            self.write_held()

    def write_held(self) -> None:
        """Write the answers waiting for the end of the turn, now; called first by anything
        else that writes to this connection or closes it."""
        held = self._held
        if held is None:
            return
        self._held = None
        if not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def send_400_response(self, msg: str) -> None:
        self.write_held()
        super().send_400_response(msg)

    def _refuse(self) -> None:
        self.write_held()
        super()._refuse()

    def shutdown(self) -> None:
        self.write_held()
        super().shutdown()

    def on_message_complete(self) -> None:
        self._in_message = False
        cycle = self.cycle
        if cycle is None or not cycle.response_complete:
            self._due = None  # the app answers in its own time
        elif not self.pipeline:
            # Answered before its message was all in (at once, or a refusal of its body):
            # idle from here, as ``on_response_complete`` would have made it.
            self._close_in(self.timeout_keep_alive)
            self._idle = True
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
        elif not self._in_message:
            self._close_in(self.timeout_keep_alive)
            self._idle = True
        # else: a message is being read (the rest of this one, or the next): its head or
        # body deadline stands, and ``on_message_complete`` makes the connection idle.

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
            self.write_held()
            self.transport.close()


class _Outbox:
    """The connections of one event loop with answers held until the end of the loop's turn.

    Why hold them: written at once, from inside ``data_received``, each answer wakes the
    client while the server still reads the other connections of the turn; measured
    served, that cost more system time than the request cycle it replaced saved. Held to
    the end of the turn, the answers go out together, as the request cycles' tasks write
    theirs (a task's first step also runs at the end of the turn, after this flush: a
    connection's answers stay in order).
    """

    __slots__ = ("_due", "_loop")
    _of: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[GuardedHttpToolsProtocol] = []

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Outbox:
        outbox: _Outbox | None = cls._of.get(loop)
        if outbox is None:
            outbox = cls._of[loop] = cls(loop)
        return outbox

    def add(self, protocol: GuardedHttpToolsProtocol) -> None:
        if not self._due:
            self._loop.call_soon(self._flush)
        self._due.append(protocol)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for protocol in due:
            protocol.write_held()


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
