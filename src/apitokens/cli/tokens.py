"""``apitokens tokens``: manage the tokens of a running server over HTTP.

Every command talks to the server and authenticates as `apitokens.cli.connection` says
(options, environment, profile; never a token on the command line) through
`apitokens.client`. Output is a Rich table by default and JSON on stdout with ``--json``.
Failures are one line on stderr and an exit code of `apitokens.cli.errors.Exit`. A token
value is printed only by create and rotate, once, with a reminder on stderr that it will not
be shown again. Wherever a token is named, its id, ``self`` or its unique name will do.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Final

import typer

from apitokens.cli import connection
from apitokens.cli.connection import ProfileOpt, TokenRefusedOpt, TokenStdinOpt, UrlOpt
from apitokens.cli.errors import CliError, Exit, from_client_error

# The client (httpx) and Rich are imported where a command uses them, not at every start of
# ``apitokens`` (``--help``, ``serve``, ``bootstrap`` need neither).
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from apitokens.client import Actor, APIToken, Client
    from apitokens.client.calls import Expiry, Unset

_META_KEY: Final = "apitokens.tokens.target"
SELF: Final = "self"
_PIPE_WIDTH: Final = 200
_REMINDER: Final = "Store this value now: it will not be shown again."

tokens_app = typer.Typer(
    help="List, create, update, rotate and delete API tokens on a running server.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, and a usage error is Click's few plain lines
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token value
)


@dataclass(frozen=True)
class _Options:
    url: str | None = None
    profile: str | None = None
    token_stdin: bool = False


IdArg = Annotated[
    str, typer.Argument(help="Token id, its unique name, or 'self' for the calling token.")
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NameOpt = Annotated[str | None, typer.Option("--name", metavar="NAME", help="New name.")]
PermOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--permission", "-p", metavar="PERMISSION", help="A permission to grant (repeatable)."
    ),
]
ServicePermOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--service-permission",
        "-s",
        metavar="PERMISSION",
        help=(
            "A permission for another service (the server's APITOKENS_EXTRA_PERMISSIONS) to "
            "grant (repeatable)."
        ),
    ),
]
CidrOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--cidr", metavar="BLOCK", help="A source network allowed to use the token (repeatable)."
    ),
]
ValueOnlyOpt = Annotated[
    bool,
    typer.Option("--value-only", help="Print only the new value on stdout (for scripts)."),
]
ExpiresOpt = Annotated[
    str | None, typer.Option("--expires-at", metavar="TIME", help="Expiry, RFC 3339 with a zone.")
]


@tokens_app.callback()
def _options(
    ctx: typer.Context,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """Connection: --url/APITOKENS_URL, the token from APITOKENS_TOKEN, --token-stdin, the
    profile saved by `apitokens login`, or a prompt."""
    connection.refuse_token_argument(token)
    ctx.meta[_META_KEY] = _Options(url, profile, token_stdin)


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
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """List tokens, newest first, following pages."""
    with client_for(ctx, url, profile, token) as client:
        tokens, more = _collect(client, None if all_ else limit, page_size)
    if as_json:
        print_json([item.to_dict() for item in tokens])
    else:
        stdout().print(_list_table(tokens))
    if more:
        note(f"Showing the first {len(tokens)} tokens; use --all or a larger --limit.")


@tokens_app.command("get")
def get_token(
    ctx: typer.Context,
    token_id: IdArg,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Show one token (by id, unique name, or 'self')."""
    with client_for(ctx, url, profile, token) as client:
        _show(find_token(client, token_id), as_json)


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The token's name.")],
    permission: PermOpt = None,
    service_permission: ServicePermOpt = None,
    cidr: CidrOpt = None,
    expires_at: ExpiresOpt = None,
    as_json: JsonOpt = False,
    value_only: ValueOnlyOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Create a token and print its value, once."""
    expiry = _parse_expiry(expires_at) if expires_at is not None else None
    with client_for(ctx, url, profile, token) as client:
        created = client.create(
            name,
            permission or [],
            cidr or None,
            expiry,
            service_permissions=service_permission or None,
        )
    _show(created, as_json, value_only)


@tokens_app.command("update")
def update_token(
    ctx: typer.Context,
    token_id: IdArg,
    name: NameOpt = None,
    permission: PermOpt = None,
    service_permission: ServicePermOpt = None,
    clear_service_permissions: Annotated[
        bool,
        typer.Option("--clear-service-permissions", help="Remove every service permission."),
    ] = False,
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
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Update a token; options left out keep their values, --permission replaces all
    permissions, --service-permission all service permissions."""
    from apitokens.client import UNSET

    if cidr and clear_cidrs:
        raise typer.BadParameter("give --cidr or --clear-cidrs, not both")
    if service_permission and clear_service_permissions:
        raise typer.BadParameter(
            "give --service-permission or --clear-service-permissions, not both"
        )
    service: list[str] | Unset = [] if clear_service_permissions else (service_permission or UNSET)
    blocks: list[str] | None = [] if clear_cidrs else (cidr or None)
    expiry = _update_expiry(expires_at)
    with client_for(ctx, url, profile, token) as client:
        target = resolve_id(client, token_id)
        updated = client.update(
            target,
            UNSET if name is None else name,
            permission if permission else UNSET,
            blocks,
            expiry,
            service_permissions=service,
        )
    _show(updated, as_json)


@tokens_app.command("rotate")
def rotate_token(
    ctx: typer.Context,
    token_id: IdArg,
    grace_period: Annotated[
        int | None,
        typer.Option("--grace-period", min=0, help="Seconds the old value keeps working."),
    ] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    value_only: ValueOnlyOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Issue a new value for a token and print it, once (asks first; --yes does not)."""
    with client_for(ctx, url, profile, token) as client:
        target = _confirmed(client, token_id, yes, "Rotate", _stops(grace_period))
        rotated = client.rotate(target, grace_period)
    _show(rotated, as_json, value_only)


@tokens_app.command("delete")
def delete_token(
    ctx: typer.Context,
    token_id: IdArg,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Delete a token; it stops working at once (asks first; --yes does not)."""
    with client_for(ctx, url, profile, token) as client:
        target = _confirmed(client, token_id, yes, "Delete", "It stops working at once.")
        client.delete(target)
    if as_json:
        print_json({"id": target, "deleted": True})
    else:
        typer.echo(f"Deleted token {target}.")


def _stops(grace_period: int | None) -> str:
    moment = f"in {grace_period} s" if grace_period else "at once"
    return f"Its current value stops working {moment}."


def _confirmed(client: Client, reference: str, yes: bool, verb: str, consequence: str) -> str:
    """The id to act on, once confirmed. With --yes and an id (or self) nothing is read
    first, so the server alone decides (a missing permission stays 403, not 404)."""
    if yes:
        return resolve_id(client, reference)
    require_terminal()
    found = find_token(client, reference)
    confirm(f"{verb} token {found.id} ({found.name!r})? {consequence}", yes)
    return reference if reference == SELF else found.id


def require_terminal() -> None:
    if not sys.stdin.isatty():
        raise CliError(
            "refusing without confirmation: stdin is not a terminal; add --yes", Exit.INVALID
        )


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given."""
    if yes:
        return
    require_terminal()
    # Prompt on stderr and nothing on stdout, which stays the command's output alone.
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("cancelled: nothing was changed", Exit.FAILED)


def _is_id(reference: str) -> bool:
    try:
        uuid.UUID(reference)
    except ValueError:
        return False
    return True


def resolve_id(client: Client, reference: str) -> str:
    """The id of the token ``reference`` names: itself if an id or ``self``, else the id of
    the one token with that name."""
    if reference == SELF or _is_id(reference):
        return reference
    return find_token(client, reference).id


def find_token(client: Client, reference: str) -> APIToken:
    """The token with this id (or ``self``), else the one token with this name."""
    if reference == SELF or _is_id(reference):
        return client.get(reference)
    named = [item for item in client.iter_tokens(page_size=1000) if item.name == reference]
    if not named:
        raise CliError(f"no token with the id or name {reference!r}", Exit.NOT_FOUND)
    if len(named) > 1:
        ids = ", ".join(item.id for item in named)
        raise CliError(
            f"{len(named)} tokens are named {reference!r} ({ids}): give the id", Exit.INVALID
        )
    return named[0]


@contextmanager
def client_for(
    ctx: typer.Context, url: str | None, profile: str | None, token: str | None
) -> Iterator[Client]:
    """A client for the options given (those after the command name win over the group's);
    API errors end as one line and the exit code of their kind."""
    target = target_for(ctx, url, profile, token)
    with open_client(target.url, target.token) as client:
        yield client


def target_for(
    ctx: typer.Context, url: str | None, profile: str | None, token: str | None
) -> connection.Target:
    """Where a ``tokens`` command connects, with which token: its own options, else the
    group's (``apitokens tokens --url ... COMMAND``); a ``--token`` argument is refused."""
    group: _Options = ctx.meta.get(_META_KEY, _Options())
    return connection.target(url or group.url, profile or group.profile, group.token_stdin, token)


@contextmanager
def open_client(url: str, token: str | None) -> Iterator[Client]:
    from apitokens.client import APITokensError, Client

    try:
        with Client(url, token) as client:
            yield client
    except APITokensError as exc:
        raise from_client_error(exc) from None
    except ValueError as exc:  # a malformed token or URL, refused before any request
        raise CliError(str(exc), Exit.INVALID) from None


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
    from apitokens.client.models import parse_time

    try:
        return parse_time(raw)
    except ValueError:
        raise typer.BadParameter(
            f"{raw!r} is not an RFC 3339 time with a zone, e.g. 2030-01-31T00:00:00Z",
            param_hint="--expires-at",
        ) from None


def _update_expiry(raw: str | None) -> Expiry | Unset:
    from apitokens.client import UNSET

    if raw is None:
        return UNSET
    return None if raw.lower() == "never" else _parse_expiry(raw)


def _show(token: APIToken, as_json: bool, value_only: bool = False) -> None:
    """Print a token; its value, when present, once and with the reminder on stderr."""
    if value_only and token.value is not None:
        typer.echo(token.value)
    elif as_json:
        print_json(token.to_dict())
    else:
        stdout().print(_detail_table(token))
        if token.value is not None:
            typer.echo(token.value)
    if token.value is not None:
        note(_REMINDER)


def _list_table(tokens: Sequence[APIToken]) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("ID", no_wrap=True)
    # The column for other services' permissions only when some token holds one.
    services = any(token.service_permissions for token in tokens)
    headers = ("Name", "Permissions", "Service permissions", "Allowed from", "Last used")
    for header in (*headers, "Expires"):
        if header != "Service permissions" or services:
            table.add_column(header, overflow="fold", min_width=6)
    for token in tokens:
        cells = [
            token.id,
            token.name,
            _summary(token.permissions, "permissions"),
            _summary(token.allowed_cidr_blocks, "blocks", empty="any"),
            when(token.last_used_at, minutes=True),
            when(token.expires_at, missing="never", minutes=True),
        ]
        if services:
            cells.insert(3, _summary(token.service_permissions or (), "permissions"))
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _detail_table(token: APIToken) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=box.SIMPLE)
    for label, cell in _detail_rows(token):
        table.add_row(Text(label, style="bold"), Text(cell))
    return table


def _detail_rows(token: APIToken) -> list[tuple[str, str]]:
    rows = [
        ("ID", token.id),
        ("Name", token.name),
        ("Permissions", "\n".join(token.permissions) or "none"),
        *(
            [("Service permissions", "\n".join(token.service_permissions) or "none")]
            if token.service_permissions is not None
            else []
        ),
        ("Allowed from", "\n".join(token.allowed_cidr_blocks) or "any"),
        ("Created", when(token.created_at)),
        ("Created by", actor_text(token.created_by)),
        ("Updated", when(token.updated_at)),
        ("Updated by", actor_text(token.updated_by)),
        ("Rotated", when(token.rotated_at)),
        ("Last used", when(token.last_used_at)),
        ("Expires", when(token.expires_at, missing="never")),
    ]
    if token.last_used_ips is not None:
        rows.append(("Last used from", "\n".join(token.last_used_ips) or "-"))
    return rows


def _summary(items: Sequence[str], noun: str, empty: str = "none") -> str:
    """Up to two items in full, otherwise a count: a list row stays one line high."""
    if len(items) <= 2:
        return "\n".join(items) or empty
    return f"{len(items)} {noun}"


def when(moment: datetime | None, missing: str = "-", minutes: bool = False) -> str:
    if moment is None:
        return missing
    return moment.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d %H:%M:%S UTC")


def actor_text(actor: Actor | None) -> str:
    return "-" if actor is None else f"{actor.type} {actor.id}"


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def note(message: str) -> None:
    typer.echo(message, err=True)


def stdout() -> Console:
    """Rich on a terminal; when piped (and COLUMNS unset), wide enough not to fold rows."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    return console


if __name__ == "__main__":  # pragma: no cover - `apitokens tokens` is the usual entry point
    tokens_app()
