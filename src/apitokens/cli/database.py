"""Which database a command uses, said on stderr, and checked before anything starts.

The rule: ``--database-url``, else ``APITOKENS_DATABASE_URL``, else the default SQLite file
``$XDG_DATA_HOME/apitokens/apitokens.db`` (``~/.local/share/apitokens/apitokens.db``), the
same for every command whatever the current directory (scripts/serve uses it too). Every
command that opens the database prints ``database: <url> (<where it came from>)`` on stderr,
with any password hidden.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from apitokens.cli.errors import CliError, Exit
from apitokens.domain.errors import StorageUnavailable
from apitokens.settings import Settings, data_dir, default_database_url

POSTGRES_EXTRA = (
    "pip install 'apitokens[postgres]' (in a checkout: .venv/bin/pip install -e '.[postgres]')"
)
_EXAMPLES = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:5432/DATABASE"


def source(given: str | None) -> str:
    if given is not None:
        return "--database-url"
    if os.environ.get("APITOKENS_DATABASE_URL"):
        return "APITOKENS_DATABASE_URL"
    return "default"


def shown(url: str) -> str:
    """The URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def announce(settings: Settings, given: str | None) -> None:
    typer.echo(f"database: {shown(settings.database_url)} ({source(given)})", err=True)


def parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise CliError(
            f"invalid database URL {url!r}: expected {_EXAMPLES}", Exit.INVALID
        ) from None


def check(settings: Settings) -> None:
    """Refuse, with one line saying what to do, a URL that cannot work before using it.

    Creates the directory of the default SQLite database; any other missing directory is
    the user's to create (a typo should not make a database somewhere unexpected).
    """
    url = parse(settings.database_url)
    _check_driver(url)
    if url.get_backend_name() == "sqlite":
        _check_sqlite(url, is_default=settings.database_url == default_database_url())


def _check_driver(url: URL) -> None:
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise CliError(
            f"unsupported database URL scheme {url.drivername!r}: expected {_EXAMPLES}",
            Exit.INVALID,
        ) from None
    except ImportError as error:
        if url.get_backend_name() == "postgresql":
            raise CliError(
                f"the PostgreSQL driver is not installed ({error}): {POSTGRES_EXTRA}",
                Exit.MISSING_DEPENDENCY,
            ) from None
        raise CliError(
            f"the driver for {url.drivername!r} is not installed ({error})",
            Exit.MISSING_DEPENDENCY,
        ) from None


def _check_sqlite(url: URL, *, is_default: bool) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if is_default:
        data_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(
            f"the directory {parent} of the SQLite database does not exist: "
            "create it, or give another --database-url",
            Exit.INVALID,
        )
    if path.exists() and path.is_dir():
        raise CliError(f"{path} is a directory, not a SQLite database file", Exit.INVALID)


@contextmanager
def errors_of(settings: Settings) -> Iterator[None]:
    """Database failures inside the block end as one line and exit 5 (unreachable)."""
    try:
        yield
    except StorageUnavailable:
        raise CliError(
            f"cannot reach the database {shown(settings.database_url)}: is it running?",
            Exit.UNREACHABLE,
        ) from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise CliError(
            f"cannot use the database {shown(settings.database_url)}: "
            f"{reason[0] if reason else type(error).__name__}",
            Exit.UNREACHABLE,
        ) from None
