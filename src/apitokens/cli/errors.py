"""Exit codes, and the one-line message every failure of ``apitokens`` ends in.

No command prints a traceback for a user's mistake or an unreachable dependency: each known
failure is a `CliError` (or is translated into one by `translate`) and ends as one line on
stderr, ``error: <what is wrong>[: <what to do>]``, with the exit code of its kind.
"""

from __future__ import annotations

import enum
from typing import IO, TYPE_CHECKING, Any

import typer
from typer import Abort

try:  # Typer 0.2x vendors Click; older Typer uses the click package
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

__all__ = ["Abort", "CliError", "ClickException", "Exit", "UsageError", "from_client_error", "line"]

from apitokens.domain.values import redact

if TYPE_CHECKING:
    from apitokens.client import APITokensError


class Exit(enum.IntEnum):
    """The exit codes of every ``apitokens`` command (documented in docs/cli.md)."""

    OK = 0
    FAILED = 1
    """Anything else: the server failed (5xx), an unexpected answer, cancelled at a prompt."""
    INVALID = 2
    """Invalid input: a bad option or argument, a bad setting, a request the server refused
    as invalid (400, 413, 422), a missing confirmation (--yes) without a terminal."""
    NOT_FOUND = 3
    """No such token (404), profile, or file."""
    REFUSED = 4
    """Refused: the token is unknown, expired or lacks a permission (401, 403), too many
    attempts (429), or a bootstrap token exists already (bootstrap without --force)."""
    UNREACHABLE = 5
    """The server or the database could not be reached, or is unavailable (503)."""
    MISSING_DEPENDENCY = 6
    """A driver this database URL needs is not installed (the message names the extra)."""


class CliError(ClickException):
    """A failure with the message shown to the user and the exit code it ends in.

    A Click exception, so Click itself prints it (one line) and exits with its code,
    whether the command runs as ``apitokens`` or under a test runner.
    """

    def __init__(self, message: str, code: Exit = Exit.FAILED) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = int(code)

    def show(self, file: IO[Any] | None = None) -> None:
        typer.echo(line(self.message), err=True, file=file)


def _by_client_error() -> tuple[tuple[type[APITokensError], Exit], ...]:
    # The client (and httpx with it) is imported by the commands that talk to a server, not
    # by every start of ``apitokens``.
    from apitokens.client import (
        BadRequest,
        ConnectionFailed,
        Forbidden,
        NotFound,
        RateLimited,
        Unauthorized,
    )

    return (
        (BadRequest, Exit.INVALID),
        (NotFound, Exit.NOT_FOUND),
        (Unauthorized, Exit.REFUSED),
        (Forbidden, Exit.REFUSED),
        (RateLimited, Exit.REFUSED),
        (ConnectionFailed, Exit.UNREACHABLE),
    )


def from_client_error(error: APITokensError) -> CliError:
    """The exit code for an API error; 503 counts as unreachable, other 5xx as failed."""
    from apitokens.client import ServerError

    if isinstance(error, ServerError) and error.status_code == 503:
        return CliError(str(error), Exit.UNREACHABLE)
    for kind, code in _by_client_error():
        if isinstance(error, kind):
            hint = _client_hint(error)
            return CliError(f"{error}{hint}", code)
    return CliError(str(error), Exit.FAILED)


def _client_hint(error: APITokensError) -> str:
    from apitokens.client import ConnectionFailed, RateLimited, Unauthorized

    if isinstance(error, Unauthorized):
        return "; check the token (apitokens login, or APITOKENS_TOKEN)"
    if isinstance(error, ConnectionFailed):
        return "; is the server running, and is --url (or the profile's URL) right?"
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return f"; try again in {error.retry_after:g} s"
    return ""


def line(message: str) -> str:
    """The one line shown: ``error: ...``, without token values, without line breaks."""
    text = " ".join(redact(message).split())
    return text if text.startswith("error: ") else f"error: {text}"
