"""Logs on stderr: one JSON object per line, or one readable line for a person at a terminal.

Only fields named in ``extra=`` reach the line; the code never passes a token value, and
request logging records ids and addresses, never headers. As a second line of defence every
formatted line goes through `redact`, which replaces anything shaped like a token value
(prefix, ``_``, 49 base62 characters) wherever it sits, glued to other characters or not.

A traceback is never text inside ``message``: in JSON it is the ``exception`` field
(``{"type", "message", "traceback": [lines]}``); a traceback that a library logged as message
text (Starlette reports a failed start-up that way) is moved there too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import traceback
from datetime import UTC, datetime
from time import time as time_now
from typing import Any, Literal, TextIO

import orjson

from apitokens.domain.values import redact

LogFormat = Literal["auto", "console", "json"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_STANDARD.add("color_message")  # uvicorn's copy of the message with terminal colours
_TRACEBACK_HEAD = "Traceback (most recent call last):"


def _split_traceback(message: str) -> tuple[str, list[str] | None]:
    """``message`` without an embedded traceback, and the traceback's lines (or None)."""
    start = message.find(_TRACEBACK_HEAD)
    if start < 0:
        return message, None
    lines = message[start:].rstrip().splitlines()
    head = message[:start].strip()
    last = lines[-1].strip() if lines else ""
    return (f"{head} {last}".strip() if head else last), lines


def _exception_field(record: logging.LogRecord) -> dict[str, Any] | None:
    if not record.exc_info or record.exc_info[0] is None:
        return None
    kind, error, tb = record.exc_info
    return {
        "type": kind.__name__,
        "message": str(error),
        "traceback": "".join(traceback.format_exception(kind, error, tb)).rstrip().splitlines(),
    }


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def rfc3339_millis(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, with the
    date and time of day formatted once per second (one log line per request)."""
    global _second
    second = int(created)
    micros = round((created - second) * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached = _second
    if cached[0] != second:
        cached = _second = (
            second,
            datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


def json_line(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    """The fields every JSON line starts with, in their order (the formatter and the direct
    lines of ``_DirectLines`` both start here, so their lines are the same)."""
    return {"at": rfc3339_millis(created), "level": level, "logger": logger, "message": message}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message, embedded = _split_traceback(record.getMessage())
        line = json_line(record.created, record.levelname.lower(), record.name, message)
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        exception = _exception_field(record)
        if exception is None and embedded is not None:
            exception = {"type": embedded[-1].split(":", 1)[0], "traceback": embedded}
        if exception is not None:
            line["exception"] = exception
        return redact(encode(line))


_STDLIB_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
# What orjson would write its own way (datetimes, dataclasses) goes through ``str``, as
# with the standard library's ``default=str``; an enum is written as its value.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(line: dict[str, Any]) -> str:
    """One log line's JSON, compact and ASCII (whatever the encoding of stderr, a line
    stays valid JSON). orjson writes it (a line per request: 0.4 µs against 3 µs for the
    standard library's encoder); a line orjson refuses (a lone surrogate in a string, an
    integer past 64 bits) or writes with characters outside ASCII goes to the standard
    library's encoder instead, which escapes them."""
    try:
        text = orjson.dumps(line, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _STDLIB_JSON.encode(line)
    return text if text.isascii() else _STDLIB_JSON.encode(line)


_local_second: tuple[int, str] = (-1, "")


def local_clock(created: float) -> str:
    """``datetime.fromtimestamp(created).strftime("%H:%M:%S")`` (local time), formatted once
    per second."""
    global _local_second
    second = int(created // 1)
    cached = _local_second
    if cached[0] != second:
        cached = _local_second = (second, datetime.fromtimestamp(second).strftime("%H:%M:%S"))
    return cached[1]


def console_text(created: float, level: str, logger: str, message: str, fields: Any) -> str:
    """One console line: ``15:04:05 INFO  apitokens.access request method=GET ...``.

    ``fields``: (name, value) pairs; those with the value None are left out. The formatter
    and the direct lines of ``_DirectLines`` both write through here."""
    text = f"{local_clock(created)} {level:<5} {logger} {message}"
    shown = " ".join(f"{k}={v}" for k, v in fields if v is not None)
    return f"{text} {shown}" if shown else text


class ConsoleFormatter(logging.Formatter):
    """``15:04:05 INFO  apitokens.access request method=GET status=200 ...``"""

    def format(self, record: logging.LogRecord) -> str:
        fields = ((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        text = console_text(
            record.created, record.levelname, record.name, record.getMessage(), fields
        )
        if record.exc_info and record.exc_info[0] is not None:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return redact(text)


def resolve_format(
    log_format: LogFormat, stream: TextIO | None = None
) -> Literal["console", "json"]:
    """``auto`` is console on a terminal and JSON otherwise (a file, a pipe, a log collector)."""
    if log_format != "auto":
        return log_format
    stream = stream or sys.stderr
    return "console" if stream.isatty() else "json"


class LineHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` that writes the lines of one event-loop turn together.

    A line logged on a thread running an event loop waits for the end of that turn of the
    loop (``call_soon``) and is written with every other line of the turn, in one
    ``write``: a busy server makes one system call per turn, not one per line (each request
    logs at least its access line). A line logged anywhere else is written at once, after
    any lines still waiting, so the order of lines is kept. ``flush()`` (called by
    ``logging.shutdown`` at exit) writes what waits. A process killed outright loses at
    most the lines of the turn it was in.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._waiting_lock = threading.Lock()
        # The loop (and its thread) that last had a flush of waiting lines due.
        self._flushing_thread: int | None = None
        self._flushing_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:
            self.handleError(record)

    def write_line(self, text: str) -> None:
        """Write one formatted line (no newline), at the end of this turn of the loop."""
        with self._waiting_lock:
            first = not self._waiting
            self._waiting.append(text)
            due = self._flushing_loop
            if (
                not first
                and threading.get_ident() == self._flushing_thread
                and due is not None
                and due.is_running()
            ):
                # This thread's loop has the flush of these lines due (and asking asyncio
                # for the running loop costs a getpid() system call each time).
                return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop on this thread: write now
            self.flush()
            return
        if first:
            self._flushing_thread = threading.get_ident()
            self._flushing_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._waiting_lock:
            lines, self._waiting = self._waiting, []
            self._flushing_thread = self._flushing_loop = None
        self.acquire()
        try:
            if lines:
                self.stream.write("\n".join(lines) + "\n")
            super().flush()
        except Exception:  # as logging does: a broken stream never fails the caller
            self.handleError(logging.makeLogRecord({"msg": "log lines"}))
        finally:
            self.release()


class _DirectLines:
    """The shortcut of the busiest lines to the ``LineHandler`` ``configure`` installs.

    Through ``logging``, a line costs a ``LogRecord`` and the formatter's generic work
    (traceback search, field filtering): for the access line, about as much as the rest of
    an authenticated read; for a refused value, a third of what the refusal costs. Here
    the line is built directly, in the format configured: the same JSON object, or the same
    console text (``JsonFormatter`` and ``ConsoleFormatter`` would write exactly these
    bytes for ``logger.info(message, extra=fields)``: ``tests/ops/test_ops_log_format.py``
    compares them), and handed to the handler, which writes it with the other lines of
    the loop's turn. The console format is what a server started in a terminal writes, so
    it gets the shortcut too (served, the console line through ``logging`` cost about 20 µs
    a request more than the JSON one through here).

    Used only while the root logger holds nothing but that handler, no logger on the way
    has a handler or a filter of its own, and the logger logs at INFO: anything else
    (another handler, a formatter of another kind, pytest's log capture) gets the
    ordinary ``logging`` call, so nothing is ever bypassed.
    """

    def __init__(self) -> None:
        self.handler: LineHandler | None = None

    def info(
        self, logger: logging.Logger, message: str, fields: dict[str, Any], checked: bool
    ) -> None:
        handler = self.handler
        if handler is None or not self._direct(logger, handler):
            logger.info(message, extra=fields)
            return
        if type(handler.formatter) is JsonFormatter:
            line = json_line(time_now(), "info", logger.name, message)
            line.update(fields)
            text = encode(line)
        else:
            text = console_text(time_now(), "INFO", logger.name, message, fields.items())
        handler.write_line(text if checked else redact(text))

    @staticmethod
    def _direct(logger: logging.Logger, handler: LineHandler) -> bool:
        root = logging.root
        if len(root.handlers) != 1 or root.handlers[0] is not handler or root.filters:
            return False
        if handler.filters or type(handler.formatter) not in _DIRECT:
            return False
        if not logger.isEnabledFor(logging.INFO):
            return False
        node: logging.Logger | None = logger
        while node is not None and node is not root:
            if node.handlers or node.filters or not node.propagate or node.disabled:
                return False
            node = node.parent
        return True


_DIRECT = (JsonFormatter, ConsoleFormatter)  # exactly these: a subclass may write otherwise
direct = _DirectLines()
_access = logging.getLogger("apitokens.access")


def info(logger: logging.Logger, message: str, fields: dict[str, Any], checked: bool) -> None:
    """``logger.info(message, extra=fields)``, the same line written more cheaply when it
    can be (see ``_DirectLines``).

    ``checked``: the caller vouches that no field can hold anything shaped like a token
    value (each is a number, an id, a parsed address or one of a fixed set of words), so
    the line is not searched for one; it would be found unchanged.
    """
    direct.info(logger, message, fields, checked)


def access(fields: dict[str, Any], checked: bool = False) -> None:
    """The access line of one request: ``apitokens.access``, ``"request"``, ``fields``."""
    direct.info(_access, "request", fields, checked)


def configure(level: str = "info", log_format: LogFormat = "auto") -> None:
    # No line carries a source position, thread or process: do not work them out per record
    # (the access log writes one record per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LineHandler(sys.stderr)
    chosen = resolve_format(log_format)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for previous in root.handlers:
        previous.flush()
    direct.handler = handler
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
