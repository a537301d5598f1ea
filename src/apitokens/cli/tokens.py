"""``apitokens tokens``: manage the tokens of a running server over HTTP.

Every command talks to ``--url`` (or ``APITOKENS_URL``) with ``--token`` (or
``APITOKENS_TOKEN``) through `apitokens.client`. Output is a Rich table by default and
JSON on stdout with ``--json``. Exit codes: 0 success, 1 the server refused or could not be
reached (its message on stderr), 2 a usage error. A token value is printed only by create
and rotate, once, with a reminder on stderr that it will not be shown again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from apitokens.client import UNSET, Actor, APIToken, APITokensError, Client
from apitokens.client.calls import Expiry, Unset
from apitokens.client.models import parse_time

DEFAULT_URL: Final = "http://127.0.0.1:8000"
_META_KEY: Final = "apitokens.tokens.target"
_PIPE_WIDTH: Final = 200
_REMINDER: Final = "Store this value now: it will not be shown again."

tokens_app = typer.Typer(
    help="List, create, update, rotate and delete API tokens on a running server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token value
)


@dataclass(frozen=True)
class _Target:
    url: str
    token: str | None

    def __repr__(self) -> str:
        return f"_Target(url={self.url!r})"


IdArg = Annotated[str, typer.Argument(help="Token id, or 'self' for the calling token.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NameOpt = Annotated[str | None, typer.Option("--name", metavar="NAME", help="New name.")]
PermOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--permission", "-p", metavar="PERMISSION", help="A permission to grant (repeatable)."
    ),
]
CidrOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--cidr", metavar="BLOCK", help="A source network allowed to use the token (repeatable)."
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", metavar="URL", show_default=False, help="Overrides the global --url."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", metavar="TOKEN", show_default=False, help="Overrides the global --token."
    ),
]
ExpiresOpt = Annotated[
    str | None, typer.Option("--expires-at", metavar="TIME", help="Expiry, RFC 3339 with a zone.")
]


@tokens_app.callback()
def _options(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="APITOKENS_URL", help="Base URL of the server.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="APITOKENS_TOKEN",
            show_default=False,
            help="Token value to authenticate with (prefer the environment variable).",
        ),
    ] = None,
) -> None:
    ctx.meta[_META_KEY] = _Target(url=url, token=token)


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
    all_: Annotated[bool, typer.Option("--all", help="Show every token (all pages).")] = False,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, help="Tokens per request.")
    ] = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List tokens, newest first, following pages."""
    with _client(ctx, url, token) as client:
        tokens, more = _collect(client, None if all_ else limit, page_size)
    if as_json:
        _print_json([item.to_dict() for item in tokens])
    else:
        _stdout().print(_list_table(tokens))
    if more:
        _note(f"Showing the first {len(tokens)} tokens; use --all or a larger --limit.")


@tokens_app.command("get")
def get_token(
    ctx: typer.Context,
    token_id: IdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Show one token."""
    with _client(ctx, url, token) as client:
        _show(client.get(token_id), as_json)


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The token's name.")],
    permission: PermOpt = None,
    cidr: CidrOpt = None,
    expires_at: ExpiresOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a token and print its value, once."""
    expiry = _parse_expiry(expires_at) if expires_at is not None else None
    with _client(ctx, url, token) as client:
        created = client.create(name, permission or [], cidr or None, expiry)
    _show(created, as_json)


@tokens_app.command("update")
def update_token(
    ctx: typer.Context,
    token_id: IdArg,
    name: NameOpt = None,
    permission: PermOpt = None,
    cidr: CidrOpt = None,
    clear_cidrs: Annotated[
        bool, typer.Option("--clear-cidrs", help="Allow any source address.")
    ] = False,
    expires_at: Annotated[
        str | None,
        typer.Option(
            "--expires-at", metavar="TIME", help="New expiry (RFC 3339 with a zone), or 'never'."
        ),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Update a token; options left out keep their values, --permission replaces all."""
    if cidr and clear_cidrs:
        raise typer.BadParameter("give --cidr or --clear-cidrs, not both")
    blocks: list[str] | None = [] if clear_cidrs else (cidr or None)
    expiry = _update_expiry(expires_at)
    with _client(ctx, url, token) as client:
        if name is None or not permission:
            current = client.get(token_id)
            name = current.name if name is None else name
            permission = permission or list(current.permissions)
        updated = client.update(token_id, name, permission, blocks, expiry)
    _show(updated, as_json)


@tokens_app.command("rotate")
def rotate_token(
    ctx: typer.Context,
    token_id: IdArg,
    grace_period: Annotated[
        int | None,
        typer.Option("--grace-period", min=0, help="Seconds the old value keeps working."),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Issue a new value for a token and print it, once."""
    with _client(ctx, url, token) as client:
        _show(client.rotate(token_id, grace_period), as_json)


@tokens_app.command("delete")
def delete_token(
    ctx: typer.Context,
    token_id: IdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Delete a token; it stops working at once."""
    with _client(ctx, url, token) as client:
        client.delete(token_id)
    if as_json:
        _print_json({"id": token_id, "deleted": True})
    else:
        typer.echo(f"Deleted token {token_id}.")


@contextmanager
def _client(ctx: typer.Context, url: str | None, token: str | None) -> Iterator[Client]:
    """A client for the options given; turns API errors into a message and exit code 1.

    ``url`` and ``token`` given after the command name override the global ones.
    """
    target = _target(ctx, url, token)
    if not target.token:
        _note("error: no token: pass --token or set APITOKENS_TOKEN.")
        raise typer.Exit(2)
    try:
        with Client(target.url, target.token) as client:
            yield client
    except APITokensError as exc:
        _note(f"error: {exc}")
        raise typer.Exit(1) from None
    except ValueError as exc:  # a malformed token or URL, refused before any request
        _note(f"error: {exc}")
        raise typer.Exit(2) from None


def _target(ctx: typer.Context, url: str | None, token: str | None) -> _Target:
    given: _Target = ctx.meta.get(_META_KEY, _Target(url=DEFAULT_URL, token=None))
    return _Target(url=url or given.url, token=token or given.token)


def _collect(client: Client, limit: int | None, page_size: int) -> tuple[list[APIToken], bool]:
    """Up to ``limit`` tokens (all if None), and whether more remain on the server."""
    tokens: list[APIToken] = []
    cursor: str | None = None
    while True:
        want = page_size if limit is None else min(page_size, limit - len(tokens))
        page = client.list(limit=want, cursor=cursor)
        tokens.extend(page.results)
        cursor = page.next
        if cursor is None or (limit is not None and len(tokens) >= limit):
            return tokens, cursor is not None


def _parse_expiry(raw: str) -> datetime:
    try:
        return parse_time(raw)
    except ValueError:
        raise typer.BadParameter(
            f"{raw!r} is not an RFC 3339 time with a zone, e.g. 2030-01-31T00:00:00Z",
            param_hint="--expires-at",
        ) from None


def _update_expiry(raw: str | None) -> Expiry | Unset:
    if raw is None:
        return UNSET
    return None if raw.lower() == "never" else _parse_expiry(raw)


def _show(token: APIToken, as_json: bool) -> None:
    """Print a token; its value, when present, once and with the reminder on stderr."""
    if as_json:
        _print_json(token.to_dict())
    else:
        _stdout().print(_detail_table(token))
        if token.value is not None:
            typer.echo(token.value)
    if token.value is not None:
        _note(_REMINDER)


def _list_table(tokens: Sequence[APIToken]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("ID", no_wrap=True)
    for header in ("Name", "Permissions", "Allowed from", "Last used", "Expires"):
        table.add_column(header, overflow="fold", min_width=6)
    for token in tokens:
        cells = (
            token.id,
            token.name,
            _summary(token.permissions, "permissions"),
            _summary(token.allowed_cidr_blocks, "blocks", empty="any"),
            _when(token.last_used_at, minutes=True),
            _when(token.expires_at, missing="never", minutes=True),
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _detail_table(token: APIToken) -> Table:
    table = Table(show_header=False, box=box.SIMPLE)
    for label, cell in _detail_rows(token):
        table.add_row(Text(label, style="bold"), Text(cell))
    return table


def _detail_rows(token: APIToken) -> list[tuple[str, str]]:
    rows = [
        ("ID", token.id),
        ("Name", token.name),
        ("Permissions", "\n".join(token.permissions) or "none"),
        ("Allowed from", "\n".join(token.allowed_cidr_blocks) or "any"),
        ("Created", _when(token.created_at)),
        ("Created by", _actor(token.created_by)),
        ("Updated", _when(token.updated_at)),
        ("Updated by", _actor(token.updated_by)),
        ("Rotated", _when(token.rotated_at)),
        ("Last used", _when(token.last_used_at)),
        ("Expires", _when(token.expires_at, missing="never")),
    ]
    if token.last_used_ips is not None:
        rows.append(("Last used from", "\n".join(token.last_used_ips) or "-"))
    return rows


def _summary(items: Sequence[str], noun: str, empty: str = "none") -> str:
    """Up to two items in full, otherwise a count: a list row stays one line high."""
    if len(items) <= 2:
        return "\n".join(items) or empty
    return f"{len(items)} {noun}"


def _when(moment: datetime | None, missing: str = "-", minutes: bool = False) -> str:
    if moment is None:
        return missing
    return moment.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d %H:%M:%S UTC")


def _actor(actor: Actor | None) -> str:
    return "-" if actor is None else f"{actor.type} {actor.id}"


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _stdout() -> Console:
    """Rich on a terminal; when piped (and COLUMNS unset), wide enough not to fold rows."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    return console


if __name__ == "__main__":  # pragma: no cover - `apitokens tokens` is the usual entry point
    tokens_app()
