"""``apitokens``: run the service, create the first token, manage tokens over HTTP."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from apitokens.settings import Settings

app = typer.Typer(
    name="apitokens",
    help="A self-hosted API token service (Panther API Tokens REST API compatible).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token value
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL (env APITOKENS_DATABASE_URL; default sqlite:///./apitokens.db)",
        show_default=False,
    ),
]


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the options actually given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValueError as error:
        typer.echo(f"error: invalid setting: {error}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (env APITOKENS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env APITOKENS_PORT)")] = None,
    database_url: DatabaseUrl = None,
    trusted_proxies: Annotated[
        str | None,
        typer.Option(help="CIDR blocks whose X-Forwarded-For is believed, comma-separated"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes on the port (env APITOKENS_WORKERS)")
    ] = None,
) -> None:
    """Run the HTTP service (upgrades the database schema first)."""
    from apitokens import serving

    serving.run(
        _settings(
            host=host,
            port=port,
            database_url=database_url,
            trusted_proxies=trusted_proxies,
            workers=workers,
        )
    )


@app.command()
def bootstrap(
    name: Annotated[str, typer.Option(help="Name of the administrator token")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create a token holding every permission; print its value alone on stdout."""
    from apitokens.bootstrap import create_admin_token
    from apitokens.domain.errors import DomainError

    settings = _settings(database_url=database_url)
    try:
        issued = create_admin_token(settings, name)
    except DomainError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None
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
    from sqlalchemy.exc import SQLAlchemyError

    from apitokens.storage.migrate import current, upgrade
    from apitokens.storage.sql.store import build_engine

    settings = _settings(database_url=database_url)
    try:
        engine = build_engine(settings.database_url)
    except SQLAlchemyError as error:
        typer.echo(f"error: invalid database URL: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        upgrade(engine)
        revision = current(engine)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        typer.echo(f"error: cannot migrate the database: {reason}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"database schema is at revision {revision} (up to date)", err=True)


def _register_optional() -> None:
    try:
        from apitokens.cli.tokens import tokens_app
    except ImportError:
        return
    app.add_typer(tokens_app, name="tokens", help="Manage tokens on a running server.")


_register_optional()


def main() -> None:
    app()
