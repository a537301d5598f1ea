"""A bound on the size of a request's head (request line and headers): 431 beyond it.

uvicorn's httptools protocol buffers a request head of any size (a 10 MB header is read
whole and answered 200), so anyone who can reach the port could make the process hold as
much memory as they care to send. This protocol answers 431 and closes the connection
when a complete head is over ``MAX_HEAD_BYTES``, and cuts off a head still incomplete
after ``READ_CEILING`` bytes, before the parser buffers more. Bodies are bounded
separately (``limits.BodyLimit``).

Pass it to uvicorn as ``http=BoundedHttpToolsProtocol`` (uvicorn[standard] brings httptools).
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
"""The longest request line plus headers answered normally (431 beyond)."""

READ_CEILING = MAX_HEAD_BYTES + 1024 * 1024
"""Bytes read while a head is incomplete before the connection is refused at once.

The exact size of a head is known only when it is complete, and a read may carry the start
of a body beside the end of a head, so the early cut-off is looser than ``MAX_HEAD_BYTES``
(reads are at most 256 KiB): it bounds what one connection can make the parser hold."""

_MESSAGE = orjson.dumps(
    {
        "message": f"request headers too large: the limit is {MAX_HEAD_BYTES} bytes",
        "code": "request_header_fields_too_large",
    }
)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools with a ceiling on the size of a request head."""

    _read_in_head = 0
    _reading_head = True  # a connection starts with a head
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._read_in_head = 0
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self._refuse()
            raise _HeadTooLarge()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True  # whatever follows on this connection starts a head

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            self._read_in_head += len(data)
            if self._read_in_head > READ_CEILING:
                self._refuse()
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser error that stopped a refused request
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning("request head over %d bytes refused", MAX_HEAD_BYTES)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(_MESSAGE)).encode("ascii") + b"\r\n"
            b"connection: close\r\n\r\n" + _MESSAGE
        )
        self.transport.close()
