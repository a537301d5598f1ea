"""One write per response (``http.connections._OneWrite``): the head waits for the body."""

from __future__ import annotations

from typing import Any

from apitokens.http.connections import _OneWrite


class Recorded:
    """The connection's transport, as far as the wrapper uses it: what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))

    def is_closing(self) -> bool:
        self.calls.append(("is_closing", None))
        return False


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def wrapped() -> tuple[_OneWrite, Recorded]:
    transport = Recorded()
    return _OneWrite(transport), transport  # type: ignore[arg-type]


def test_the_head_goes_out_with_the_first_body_write_and_the_rest_as_sent() -> None:
    one, transport = wrapped()
    one.write(HEAD)
    assert transport.calls == []
    one.write(b"{}")
    one.write(b"more")
    assert transport.calls == [("write", HEAD + b"{}"), ("write", b"more")]


def test_an_interim_answer_is_never_held() -> None:
    one, transport = wrapped()
    one.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.calls == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]


def test_anything_else_on_the_connection_writes_the_held_head_first() -> None:
    one, transport = wrapped()
    one.write(HEAD)
    assert one.is_closing() is False
    one.write(b"{}")
    one.write(HEAD)
    one.close()
    assert transport.calls == [
        ("write", HEAD),
        ("is_closing", None),
        ("write", b"{}"),
        ("write", HEAD),
        ("close", None),
    ]


def test_a_response_without_a_body_write_has_its_head_written_when_it_completes() -> None:
    one, transport = wrapped()
    completed: list[str] = []
    on_response = one.flushing(lambda: completed.append("next request may start"))
    one.write(HEAD)  # HEAD: uvicorn writes no body at all
    on_response()
    assert transport.calls == [("write", HEAD)]
    assert completed == ["next request may start"]
