"""``apitokens``: run the service, create the first token, manage tokens over HTTP.

Every failure a user can cause or meet (a bad option, a bad setting, an unreachable server
or database, a missing driver) ends as one line on stderr and an exit code of
`apitokens.cli.errors.Exit`; never a traceback (``APITOKENS_DEBUG=1`` shows one for a bug).
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from apitokens.cli.errors import Abort, ClickException, CliError, Exit, UsageError, line

# Imported by the commands that use them, not at every start: `Settings` (pydantic and
# pydantic-settings, the largest part of a start) is needed by the database commands and by
# `serve`'s flags, never by the commands that talk to a server (tokens, login, audit...).
if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from apitokens.settings import Settings

app = typer.Typer(
    name="apitokens",
    help="A self-hosted API token service (Panther API Tokens REST API compatible).",
    epilog="Exit codes: 0 success, 1 failed, 2 invalid input, 3 not found, 4 refused, "
    "5 unreachable, 6 missing dependency (docs/cli.md).",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, and a usage error is Click's few plain lines
    pretty_exceptions_enable=False,  # main() turns every failure into one line
    pretty_exceptions_show_locals=False,  # locals may hold a token value
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (env APITOKENS_DATABASE_URL; "
        "default: apitokens.db in $XDG_DATA_HOME/apitokens or ~/.local/share/apitokens).",
        show_default=False,
    ),
]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apitokens")
    except PackageNotFoundError:  # pragma: no cover - running from a tree never installed
        return "unknown"


def _version(show: bool) -> None:
    if show:
        typer.echo(f"apitokens {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A self-hosted API token service (Panther API Tokens REST API compatible)."""


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options actually given on top."""
    from pydantic import ValidationError

    from apitokens.settings import Settings

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(_setting_problem(item, given) for item in error.errors())
        raise CliError(f"invalid setting: {problems}", Exit.INVALID) from None


def _setting_problem(item: Any, given: dict[str, Any]) -> str:
    name = str(item["loc"][0]) if item.get("loc") else "?"
    where = f"--{name.replace('_', '-')}" if name in given else f"APITOKENS_{name.upper()}"
    return f"{where}: {item['msg']}"


def _ready(given_url: str | None, *, announce: bool = True, **overrides: Any) -> Settings:
    """Settings checked for use: the database named on stderr, its driver present."""
    from apitokens.cli import database

    settings = _settings(database_url=given_url, **overrides)
    if announce:
        database.announce(settings, given_url)
    database.check(settings)
    return settings


# -- serve: one flag per setting -----------------------------------------------------------


def _field_help(name: str, field: FieldInfo) -> str:
    text = " ".join((field.description or name.replace("_", " ").capitalize()).split())
    text = text.replace("``", "").replace("None", "none")
    default = field.get_default(call_default_factory=True)
    if isinstance(default, tuple):
        default = ",".join(str(item) for item in default) or "none"
    elif default is None:
        default = "none"
    elif isinstance(default, bool):
        default = "on" if default else "off"
    return f"{text} (env APITOKENS_{name.upper()}; default: {default})"


def _serve_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per `Settings` field, so a new setting is a flag at once."""
    from apitokens.settings import Settings

    parameters = []
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = _field_help(name, field)
        option: Any
        if field.annotation is bool:
            option = typer.Option(f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False)
            annotation: Any = Annotated[bool | None, option]
        else:
            option = typer.Option(flag, help=help_text, show_default=False, metavar="VALUE")
            annotation = Annotated[str | None, option]
        parameters.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None
            )
        )
    return parameters


def _setting_flags() -> list[Any]:
    """`serve`'s options, made by Typer from one keyword parameter per setting."""

    def flags(**given: Any) -> None:  # pragma: no cover - never called, only inspected
        pass

    parameters = _serve_parameters()
    flags.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    flags.__annotations__ = {p.name: p.annotation for p in parameters}
    # Typer's public way from a function to its click parameters: a one-command app. Every
    # flag is an optional string or switch, which click passes to ``serve`` unconverted.
    flags_app = typer.Typer(add_completion=False)
    flags_app.command()(flags)
    return list(typer.main.get_command(flags_app).params)


class _SettingFlagsCommand(TyperCommand):
    """`serve`, whose options (a flag per setting) are made when first asked for: for its
    help, completion or a run of it, never when another command runs (they need `Settings`,
    and so pydantic). Typer builds the command itself from a function without parameters;
    the values of the flags reach ``serve(**given)`` as they are."""

    _params: list[Any]
    _made = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # click calls ``serve(**values)`` itself. Typer's wrapper of the callback matches the
        # values to the function's own parameters, and ``serve`` declares none (typer 0.29
        # refuses the flags for that).
        self.callback = _serve_with_flags

    @property
    def params(self) -> list[Any]:
        if not self._made:
            self._params += _setting_flags()
            self._made = True
        return self._params

    @params.setter
    def params(self, value: list[Any]) -> None:
        self._params = value


def serve(**given: Any) -> None:
    """Run the HTTP service (upgrades the database schema first).

    Every setting is a flag here and an environment variable APITOKENS_<NAME>; a flag wins.
    """
    import logging

    from apitokens import logs, serving
    from apitokens.cli import database

    database_url = given.pop("database_url", None)
    settings = _ready(database_url, announce=False, **given)
    logs.configure(settings.log_level, settings.log_format)
    logging.getLogger("apitokens").info(
        "database",
        extra={
            "database": database.shown(settings.database_url),
            "source": database.source(database_url),
        },
    )
    # A database that does not answer yet is not fatal: the server starts, answers /readyz
    # 503 and retries it (service/background.py). Only what can never work stops it here.
    _resume_collector()
    serving.run(settings)


def _serve_with_flags(**given: Any) -> None:
    serve(**given)


serve.__signature__ = inspect.Signature([])  # type: ignore[attr-defined]
app.command(help=serve.__doc__, cls=_SettingFlagsCommand)(serve)


# -- database commands ---------------------------------------------------------------------


@app.command()
def bootstrap(
    name: Annotated[str, typer.Option(help="Name of the administrator token")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Create it even though a bootstrap token exists already."),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a token holding every permission; print its value alone on stdout.

    Refused (exit 4) when a token made by bootstrap exists already, unless --force.
    """
    from apitokens.bootstrap import BootstrapTokenExists, create_admin_token
    from apitokens.cli import database
    from apitokens.domain.errors import DomainError

    settings = _ready(database_url)
    try:
        with database.errors_of(settings):
            issued = create_admin_token(settings, name, force=force)
    except BootstrapTokenExists as exists:
        token = exists.token
        raise CliError(
            f"a bootstrap token exists already in this database: {token.id} ({token.name!r}, "
            f"created {token.created_at:%Y-%m-%d %H:%M} UTC); use it (apitokens login), or add "
            "--force to create another",
            Exit.REFUSED,
        ) from None
    except DomainError as error:
        raise CliError(error.message, Exit.INVALID) from None
    typer.echo(
        f"Created token {issued.token.id} ({issued.token.name!r}) with every permission. "
        "Its value is printed once, below; store it now.",
        err=True,
    )
    sys.stdout.write(issued.value + "\n")


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Upgrade the database schema to this version, then exit.

    Run it once before starting several instances on one database. (Each instance also
    upgrades at start, one at a time under a lock, so it is never harmful to skip.)
    """
    from apitokens.cli import database
    from apitokens.storage.migrate import current, upgrade
    from apitokens.storage.sql.store import build_engine

    settings = _ready(database_url)
    engine = build_engine(settings.database_url)
    try:
        with database.errors_of(settings):
            upgrade(engine)
            revision = current(engine)
    finally:
        engine.dispose()
    typer.echo(f"database schema is at revision {revision} (up to date)", err=True)


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="File to write the copy to.", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace DEST if it exists.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Copy a live SQLite database to DEST, consistently, while the server keeps serving.

    Uses SQLite's online backup API: one snapshot, taken while writers go on (WAL mode).
    For PostgreSQL use pg_dump (see docs/operations.md).
    """
    from apitokens.cli import database

    settings = _ready(database_url)
    url = database.parse(settings.database_url)
    if url.get_backend_name() != "sqlite":
        raise CliError(
            "backup copies a SQLite database; for PostgreSQL use pg_dump "
            "(pg_dump --format=custom --file=DEST DATABASE_URL, see docs/operations.md)",
            Exit.INVALID,
        )
    source = Path(url.database or "")
    if not url.database or url.database == ":memory:" or not source.is_file():
        raise CliError(f"no SQLite database at {source}: nothing to back up", Exit.NOT_FOUND)
    if dest.exists() and not force:
        raise CliError(f"{dest} exists: give another path, or --force to replace it", Exit.INVALID)
    if not dest.parent.is_dir():
        raise CliError(f"the directory {dest.parent} does not exist", Exit.INVALID)
    tokens = _sqlite_backup(source, dest)
    typer.echo(f"backup: wrote {dest} ({tokens} tokens), a consistent copy of {source}", err=True)


def _sqlite_backup(source: Path, dest: Path) -> int:
    import sqlite3

    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        original = sqlite3.connect(source, timeout=30)
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(descriptor)
            copy = sqlite3.connect(partial)
            try:
                original.backup(copy)  # all pages in one step: one consistent snapshot
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
                if verdict != "ok":
                    raise CliError(f"the copy failed its integrity check: {verdict}")
                (tokens,) = copy.execute("SELECT count(*) FROM tokens").fetchone()
            finally:
                copy.close()
        finally:
            original.close()
        os.replace(partial, dest)
    except sqlite3.Error as error:
        raise CliError(f"cannot back up {source}: {error}", Exit.FAILED) from None
    finally:
        partial.unlink(missing_ok=True)
    return int(tokens)


def _register_optional() -> None:
    try:
        from apitokens.cli.account import register_account
        from apitokens.cli.service import register_service
        from apitokens.cli.tokens import tokens_app
    except ImportError:
        return
    app.add_typer(tokens_app, name="tokens", help="Manage tokens on a running server.")
    register_account(app)
    register_service(app)
    from apitokens.cli.webhooks import register  # webhooks, and `tokens usage`

    register(app, tokens_app)


_register_optional()


# Optional imports of libraries the CLI uses that this process never needs; each library
# catches the ImportError and puts a stand-in in its place.
_DECLINED_IMPORTS = (
    # httpx's own command-line client (Click, Pygments, Rich's progress bars), which
    # ``import httpx`` imports: 40-60 ms of every command that talks to a server.
    "httpx._main",
    # Pygments colouring of Mako's HTML error pages, which Alembic's import of Mako pulls
    # in: 40 ms of every command that migrates (serve, bootstrap, migrate).
    "mako.ext.pygmentplugin",
)


@contextmanager
def _declined_imports() -> Iterator[None]:
    """While a command runs, the `_DECLINED_IMPORTS` not imported yet fail to import."""
    declined = [name for name in _DECLINED_IMPORTS if name not in sys.modules]
    for name in declined:
        sys.modules[name] = None  # type: ignore[assignment]  # "import of ... halted"
    try:
        yield
    finally:  # in a process that goes on (a test running main()), as it was
        for name in declined:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


# A command's start allocates a few hundred thousand objects that live until it exits
# (modules, classes, functions); the cyclic garbage collector's passes over them free
# nothing and took 60-90 ms of a `bootstrap`. It is paused while a command runs, which ends
# in seconds; `serve` resumes it before it serves (`_resume_collector`).
_collector_paused_by_us = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    global _collector_paused_by_us
    if not gc.isenabled():  # paused by whoever runs main() already
        yield
        return
    gc.disable()
    _collector_paused_by_us = True
    try:
        yield
    finally:
        _resume_collector()


def _resume_collector() -> None:
    """The collector as it was before the command started (for a process that goes on)."""
    global _collector_paused_by_us
    if _collector_paused_by_us:
        _collector_paused_by_us = False
        gc.enable()


def main() -> None:
    """The ``apitokens`` executable. Every failure ends as one line: a usage error says what
    is wrong and where the help is; a bug too, unless APITOKENS_DEBUG=1."""
    with _declined_imports(), _collector_paused():
        _run()


def _run() -> None:
    command = typer.main.get_command(app)
    try:
        status = command.main(prog_name="apitokens", standalone_mode=False)
        sys.exit(status if isinstance(status, int) else 0)
    except UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `apitokens`: the help
            error.show()
            sys.exit(int(Exit.INVALID))
        where = error.ctx.command_path if error.ctx is not None else "apitokens"
        sys.stderr.write(line(f"{error.format_message()} (see '{where} --help')") + "\n")
        sys.exit(int(Exit.INVALID))
    except ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except Abort:
        sys.stderr.write("error: aborted; nothing was changed\n")
        sys.exit(int(Exit.FAILED))
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    except Exception as error:
        if os.environ.get("APITOKENS_DEBUG"):
            raise
        sys.stderr.write(
            line(f"unexpected {type(error).__name__}: {error} (APITOKENS_DEBUG=1 shows where)")
            + "\n"
        )
        sys.exit(int(Exit.FAILED))
