"""Log lines in-process: redaction by the value's own shape, tracebacks as a field, formats."""

from __future__ import annotations

import asyncio
import enum
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from apitokens import logs
from apitokens.domain.values import ValueCodec, redact


@pytest.fixture
def value() -> str:
    return ValueCodec("apitk").issue().value


def record(
    message: str, *args: object, exc_info: object = None, **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord("apitokens.test", logging.ERROR, __file__, 1, message, args, exc_info)  # type: ignore[arg-type]
    made.__dict__.update(extra)
    return made


@pytest.mark.parametrize(
    "template",
    [
        "{v}",
        "AlertRead{v}",  # glued to a permission name
        "x_{v}",
        "{v}trailing",
        "key={v};",
        "OrganizationAPITokenReadOrganizationAPITokenRead{v}",
        "{v}{v}",
    ],
)
def test_values_are_redacted_wherever_they_sit(value: str, template: str) -> None:
    text = template.format(v=value)
    assert value not in redact(text)
    assert value[6:] not in redact(text)  # not even the secret part
    assert "<token value>" in redact(text)
    line = logs.JsonFormatter().format(record("got %s", text, detail=text))
    assert value not in line
    assert value[6:] not in line
    assert value not in logs.ConsoleFormatter().format(record("got %s", text))


def test_text_that_is_no_value_is_left_alone() -> None:
    for text in ("apitk_short", "AlertRead", "x_" + "a" * 48, "plain words"):
        assert redact(text) == text


def test_a_traceback_is_a_structured_field(value: str) -> None:
    try:
        raise RuntimeError(f"boom with {value}")
    except RuntimeError:
        line = json.loads(logs.JsonFormatter().format(record("failed", exc_info=sys.exc_info())))
    assert line["message"] == "failed"
    exception = line["exception"]
    assert (exception["type"], exception["message"]) == ("RuntimeError", "boom with <token value>")
    assert exception["traceback"][0] == "Traceback (most recent call last):"
    assert exception["traceback"][-1] == "RuntimeError: boom with <token value>"
    assert value not in json.dumps(line)


def test_a_traceback_logged_as_text_is_moved_out_of_the_message() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "sqlite3.OperationalError: unable to open database file\n"
    )
    line = json.loads(logs.JsonFormatter().format(record(text)))
    assert line["message"] == "sqlite3.OperationalError: unable to open database file"
    assert line["exception"]["type"] == "sqlite3.OperationalError"
    assert line["exception"]["traceback"][1] == '  File "x.py", line 1, in <module>'


def test_auto_format_is_console_on_a_terminal_and_json_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format("auto", Terminal()) == "console"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("json", Terminal()) == "json"
    assert logs.resolve_format("console", io.StringIO()) == "console"
    console = logs.ConsoleFormatter().format(record("request", status=200, token_id=None))
    assert console.endswith(" ERROR apitokens.test request status=200")


class CountingStream(io.StringIO):
    """A stream that counts its writes (one per system call, for the real stderr)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingStream]:
    """``logs.configure("info", "json")`` on a counting stream; logging restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs.direct.handler)
    stream = CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("info", "json")
    yield stream
    root.handlers[:], level, logs.direct.handler = saved
    root.setLevel(level)


ACCESS_FIELDS = {
    "method": "GET",
    "route": "/api-tokens/self",
    "status": 200,
    "duration_ms": 0.125,
    "token_id": "6f1c1b1e-0000-4000-8000-000000000000",
    "client_ip": "2001:db8::1",
}


def alone() -> None:
    """Only the configured handler on the root logger: pytest adds its own for each phase
    of a test (setup, call), and any other handler makes the access log use ``logging``."""
    logging.getLogger().handlers[:] = [logs.direct.handler]


def _formatted(fields: dict[str, object]) -> dict[str, object]:
    """What ``logging`` with the JSON formatter writes for the access line, parsed."""
    made = logging.LogRecord("apitokens.access", logging.INFO, __file__, 1, "request", (), None)
    made.__dict__.update(fields)
    return json.loads(logs.JsonFormatter().format(made))  # type: ignore[no-any-return]


def _without_time(line: dict[str, object]) -> list[tuple[str, object]]:
    return [(key, value) for key, value in line.items() if key != "at"]


def test_access_lines_are_what_logging_would_write(configured: CountingStream, value: str) -> None:
    alone()
    logs.access(dict(ACCESS_FIELDS), checked=True)  # no event loop here: written at once
    odd = {**ACCESS_FIELDS, "method": f"X{value}", "client_ip": f"peer-{value}"}
    logs.access(odd)  # not vouched for: searched for values like every other line
    lines = configured.getvalue().splitlines()
    assert len(lines) == 2
    written = [json.loads(line) for line in lines]
    # Same fields, same order, same values as the JSON formatter's line.
    assert _without_time(written[0]) == _without_time(_formatted(ACCESS_FIELDS))
    assert _without_time(written[1]) == _without_time(_formatted(odd))
    assert written[1]["method"] == "X<token value>"
    assert written[1]["client_ip"] == "peer-<token value>"
    assert value not in configured.getvalue()
    assert str(written[0]["at"]).endswith("+00:00")


async def test_access_lines_of_one_loop_turn_are_written_together(
    configured: CountingStream,
) -> None:
    alone()
    for index in range(5):
        logs.access({**ACCESS_FIELDS, "status": 200 + index}, checked=True)
    assert configured.writes == 0  # not yet: at the end of this turn of the loop
    await asyncio.sleep(0)
    assert configured.writes == 1
    statuses = [json.loads(line)["status"] for line in configured.getvalue().splitlines()]
    assert statuses == [200, 201, 202, 203, 204]
    logs.access(dict(ACCESS_FIELDS), checked=True)
    logging.getLogger("apitokens.test").warning("after it")  # waits its turn too
    assert configured.writes == 1
    logs.direct.handler.flush()  # as logging.shutdown does at exit
    assert configured.writes == 2
    lines = configured.getvalue().splitlines()
    assert len(lines) == 7
    assert json.loads(lines[-1])["message"] == "after it"


def test_another_handler_gets_access_lines_through_logging(
    configured: CountingStream, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="apitokens.access"):
        logs.access(dict(ACCESS_FIELDS), checked=True)
    [captured] = [r for r in caplog.records if r.name == "apitokens.access"]
    assert (captured.getMessage(), captured.__dict__["token_id"]) == (
        "request",
        ACCESS_FIELDS["token_id"],
    )
    # ... and the configured handler wrote it too, through logging.
    assert json.loads(configured.getvalue())["token_id"] == ACCESS_FIELDS["token_id"]


def test_access_lines_follow_the_level_and_the_format(
    configured: CountingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone()
    logging.getLogger().setLevel(logging.WARNING)
    logs.access(dict(ACCESS_FIELDS), checked=True)
    assert configured.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", configured)
    logs.configure("info", "console")
    alone()
    logs.access(dict(ACCESS_FIELDS), checked=True)
    assert (
        configured.getvalue()
        .rstrip()
        .endswith(
            "INFO  apitokens.access request method=GET route=/api-tokens/self status=200 "
            "duration_ms=0.125 token_id=6f1c1b1e-0000-4000-8000-000000000000 client_ip=2001:db8::1"
        )
    )


def _console_formatted(fields: dict[str, object], created: float) -> str:
    made = logging.LogRecord("apitokens.access", logging.INFO, __file__, 1, "request", (), None)
    made.__dict__.update(fields)
    made.created = created
    return logs.ConsoleFormatter().format(made)


def test_console_access_lines_are_what_logging_would_write(
    configured: CountingStream, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A server started in a terminal writes console lines: the same shortcut, the same text."""
    monkeypatch.setattr(logs, "time_now", lambda: 1_800_000_000.25)
    monkeypatch.setattr(sys, "stderr", configured)
    logs.configure("info", "console")
    alone()
    logs.access({**ACCESS_FIELDS, "token_id": None}, checked=True)  # None: left out
    odd = {**ACCESS_FIELDS, "method": f"X{value}", "client_ip": f"peer-{value}"}
    logs.access(odd)  # not vouched for: searched for values like every other line
    lines = configured.getvalue().splitlines()
    assert lines == [
        _console_formatted({**ACCESS_FIELDS, "token_id": None}, 1_800_000_000.25),
        _console_formatted(odd, 1_800_000_000.25),
    ]
    assert " token_id=" not in lines[0]
    assert "method=X<token value>" in lines[1] and value not in configured.getvalue()


def test_lines_go_through_logging_when_the_formatter_is_another(
    configured: CountingStream,
) -> None:
    class Plain(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return f"plain {record.getMessage()} {record.__dict__.get('status')}"

    alone()
    assert logs.direct.handler is not None
    logs.direct.handler.setFormatter(Plain())
    logs.access(dict(ACCESS_FIELDS), checked=True)
    assert configured.getvalue() == "plain request 200\n"


def test_a_broken_stream_never_fails_the_caller(
    configured: CountingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str) -> int:
        raise OSError("stderr is gone")

    monkeypatch.setattr(configured, "write", broken)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # as in production
    alone()
    logs.access(dict(ACCESS_FIELDS), checked=True)  # does not raise


async def test_a_line_from_another_thread_is_written_at_once_after_the_waiting_ones(
    configured: CountingStream,
) -> None:
    alone()
    logs.access(dict(ACCESS_FIELDS), checked=True)  # waits for the end of this turn
    worker = threading.Thread(target=logging.getLogger("apitokens.test").warning, args=("t",))
    worker.start()
    worker.join()
    assert configured.writes == 1  # the thread wrote both, in their order
    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["request", "t"]
    await asyncio.sleep(0)
    assert configured.writes == 1  # nothing left for the end of the turn


def test_any_logger_can_write_directly_and_falls_back_when_configured_otherwise(
    configured: CountingStream,
) -> None:
    alone()
    auth = logging.getLogger("apitokens.auth")
    fields = {"reason": "unknown", "client_ip": "192.0.2.1"}
    logs.info(auth, "authentication refused", dict(fields), True)
    made = logging.LogRecord("apitokens.auth", logging.INFO, __file__, 1, "refused", (), None)
    made.__dict__.update(fields)
    expected = json.loads(logs.JsonFormatter().format(made))
    expected["message"] = "authentication refused"
    [written] = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert _without_time(written) == _without_time(expected)

    # A handler of its own on a logger on the way: the line goes through logging, to both.
    records: list[logging.LogRecord] = []
    own = logging.Handler()
    own.emit = records.append  # type: ignore[method-assign]
    parent = logging.getLogger("apitokens")
    parent.addHandler(own)
    try:
        logs.info(auth, "authentication refused", dict(fields), True)
    finally:
        parent.removeHandler(own)
    assert [(r.getMessage(), r.__dict__["reason"]) for r in records] == [
        ("authentication refused", "unknown")
    ]
    assert len(configured.getvalue().splitlines()) == 2


class _Shade(enum.Enum):
    DARK = "dark"


class _Level(enum.IntEnum):
    HIGH = 2


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # What orjson refuses goes to the standard library: a lone surrogate, escaped...
        ({"name": "a\ud800b"}, '{"name":"a\\ud800b"}'),
        # ...and an integer past 64 bits.
        ({"n": 2**70}, '{"n":1180591620717411303424}'),
        # What orjson would write its own way is written as str() writes it.
        (
            {"at": datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)},
            '{"at":"2026-12-02 01:02:03+00:00"}',
        ),
        ({"shade": _Shade.DARK}, '{"shade":"dark"}'),  # an enum: its value
        # Outside ASCII: escaped, so a line is valid JSON whatever stderr's encoding.
        ({"name": "naïve ✓", "n": 1, "ok": None}, '{"name":"na\\u00efve \\u2713","n":1,"ok":null}'),
        ({"flag": True, "level": _Level.HIGH}, '{"flag":true,"level":2}'),  # int subclasses
    ],
)
def test_a_line_is_compact_json_and_never_fails_on_what_it_holds(
    fields: dict[str, object], expected: str
) -> None:
    text = logs.encode(fields)
    assert text == expected
    assert text.isascii()
    assert json.loads(text) == json.loads(
        json.dumps(fields, default=lambda o: getattr(o, "value", str(o)))
    )
