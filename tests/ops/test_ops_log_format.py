"""Log lines in-process: redaction by the value's own shape, tracebacks as a field, formats."""

from __future__ import annotations

import io
import json
import logging
import sys

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
