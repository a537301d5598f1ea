"""``apitokens tokens``: manage the tokens of a running server over HTTP.

Every command talks to ``--url`` (or ``APITOKENS_URL``) with ``--token`` (or
``APITOKENS_TOKEN``) through `apitokens.client`. Output is a Rich table by default and
JSON on stdout with ``--json``. Exit codes: 0 success, 1 the server refused or could not be
reached (its message on stderr), 2 a usage error. A token value is printed only by create
and rotate, once, with a reminder on stderr that it will not be shown again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from apitokens.client import UNSET, APIToken, APITokensError, Client
from apitokens.client.calls import Expiry, Unset
from apitokens.client.models import parse_time

DEFAULT_URL: Final = "http://127.0.0.1:8000"
_META_KEY: Final = "apitokens.tokens.target"
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
) -> None:
    """List tokens, newest first, following pages."""
    with _client(ctx) as client:
        tokens, more = _collect(client, None if all_ else limit, page_size)
    if as_json:
        _print_json([token.to_dict() for token in tokens])
    else:
        _stdout().print(_list_table(tokens))
    if more:
        _note(f"Showing the first {len(tokens)} tokens; use --all or a larger --limit.")


@tokens_app.command("get")
def get_token(ctx: typer.Context, token_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show one token."""
    with _client(ctx) as client:
        _show(client.get(token_id), as_json)


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The token's name.")],
    permission: PermOpt = None,
    cidr: CidrOpt = None,
    expires_at: ExpiresOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print its value, once."""
    expiry = _parse_expiry(expires_at) if expires_at is not None else None
    with _client(ctx) as client:
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
) -> None:
    """Update a token; options left out keep their values, --permission replaces all."""
    if cidr and clear_cidrs:
        raise typer.BadParameter("give --cidr or --clear-cidrs, not both")
    blocks: list[str] | None = [] if clear_cidrs else (cidr or None)
    expiry = _update_expiry(expires_at)
    with _client(ctx) as client:
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
) -> None:
    """Issue a new value for a token and print it, once."""
    with _client(ctx) as client:
        _show(client.rotate(token_id, grace_period), as_json)


@tokens_app.command("delete")
def delete_token(ctx: typer.Context, token_id: IdArg, as_json: JsonOpt = False) -> None:
    """Delete a token; it stops working at once."""
    with _client(ctx) as client:
        client.delete(token_id)
    if as_json:
        _print_json({"id": token_id, "deleted": True})
    else:
        typer.echo(f"Deleted token {token_id}.")


@contextmanager
def _client(ctx: typer.Context) -> Iterator[Client]:
    """A client for the global options; turns API errors into a message and exit code 1."""
    target: _Target = ctx.meta[_META_KEY]
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
    table = Table("ID", "Name", "Permissions", "Allowed from", "Created", "Last used", "Expires")
    table.columns[0].no_wrap = True
    for token in tokens:
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    token.id,
                    token.name,
                    _short_list(token.permissions),
                    ", ".join(token.allowed_cidr_blocks) or "any",
                    _when(token.created_at),
                    _when(token.last_used_at),
                    _when(token.expires_at, missing="never"),
                )
            )
        )
    return table


def _detail_table(token: APIToken) -> Table:
    table = Table(show_header=False)
    for label, cell in _detail_rows(token):
        table.add_row(Text(label, style="bold"), Text(cell))
    return table


def _detail_rows(token: APIToken) -> list[tuple[str, str]]:
    rows = [
        ("ID", token.id),
        ("Name", token.name),
        ("Permissions", "\n".join(token.permissions) or "none"),
        ("Allowed from", "\n".join(token.allowed_cidr_blocks) or "any"),
        ("Created", _by(token.created_at, token.created_by)),
        ("Updated", _by(token.updated_at, token.updated_by)),
        ("Rotated", _when(token.rotated_at)),
        ("Last used", _when(token.last_used_at)),
        ("Expires", _when(token.expires_at, missing="never")),
    ]
    if token.last_used_ips is not None:
        rows.append(("Last used from", "\n".join(token.last_used_ips) or "-"))
    return rows


def _short_list(items: Sequence[str], shown: int = 3) -> str:
    if len(items) <= shown:
        return ", ".join(items) or "none"
    return ", ".join(items[: shown - 1]) + f", … (+{len(items) - shown + 1} more)"


def _when(moment: datetime | None, missing: str = "-") -> str:
    return missing if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _by(moment: datetime | None, actor: Any) -> str:
    when = _when(moment)
    return when if actor is None else f"{when} by {actor.type} {actor.id}"


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


if __name__ == "__main__":  # pragma: no cover - `apitokens tokens` is the usual entry point
    tokens_app()
