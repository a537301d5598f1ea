"""``apitokens audit``, ``verify`` and ``report-leak``: the service's extensions over HTTP."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from apitokens.cli import connection
from apitokens.cli.connection import ProfileOpt, TokenRefusedOpt, TokenStdinOpt, UrlOpt
from apitokens.cli.errors import CliError, Exit
from apitokens.cli.tokens import (
    actor_text,
    note,
    open_client,
    print_json,
    resolve_id,
    stdout,
    when,
)

if TYPE_CHECKING:  # the client (httpx) and Rich are imported by the commands that use them
    from apitokens.client import AuditEvent, Client

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _client(
    url: str | None, profile: str | None, token_stdin: bool, token: str | None
) -> AbstractContextManager[Client]:
    target = connection.target(url, profile, token_stdin, token)
    return open_client(target.url, target.token)


def audit(
    token_ref: Annotated[
        str | None,
        typer.Option(
            "--token-id", metavar="ID", help="Only events of this token (id, unique name, self)."
        ),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="ACTION", help="Only this action, e.g. token.delete."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
    all_: Annotated[bool, typer.Option("--all", help="Show every event (all pages).")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """List the audit trail, newest first (needs OrganizationAPITokenRead)."""
    with _client(url, profile, token_stdin, token) as client:
        token_id = None if token_ref is None else _audit_target(client, token_ref)
        events: list[AuditEvent] = []
        more = False
        for event in client.iter_audit_events(
            page_size=min(limit, 1000) if not all_ else 1000, token_id=token_id, action=action
        ):
            if not all_ and len(events) >= limit:
                more = True
                break
            events.append(event)
    if as_json:
        print_json([event.to_dict() for event in events])
    else:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD)
        for header in ("At", "Action", "Token", "Actor", "Client IP", "Detail"):
            table.add_column(header, overflow="fold")
        for event in events:
            table.add_row(
                *(
                    Text(cell)
                    for cell in (
                        when(event.at),
                        event.action,
                        event.token_id or "-",
                        actor_text(event.actor),
                        event.client_ip or "-",
                        json.dumps(event.detail) if event.detail else "",
                    )
                )
            )
        stdout().print(table)
    if more:
        note(f"Showing the first {len(events)} events; use --all or a larger --limit.")


def _audit_target(client: Client, reference: str) -> str:
    """An id as given (events of deleted tokens too), else the id of the named token."""
    try:
        return resolve_id(client, reference) if reference != "self" else client.get("self").id
    except CliError as error:
        if error.code is Exit.NOT_FOUND:
            raise CliError(
                f"no token named {reference!r}; a deleted token's events need its id",
                Exit.NOT_FOUND,
            ) from None
        raise


def verify(
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission", "-p", metavar="PERMISSION", help="A permission to require (repeatable)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """Check the token as a reverse proxy would (/verify): valid from here, holding every
    --permission. Exit 0 if so, 4 if refused (the reason on stderr)."""
    with _client(url, profile, token_stdin, token) as client:
        result = client.verify(permission or [])
    if as_json:
        print_json(result.to_dict())
        return
    held = ", ".join(result.permissions) or "none"
    typer.echo(f"valid: token {result.token_id} ({result.name!r}); permissions: {held}")


def report_leak(
    url: UrlOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Report a leaked value: read from a hidden prompt, or stdin's first line (never an
    argument). A working value is revoked at once; no token of your own is needed."""
    target_url = url or connection.resolve_url(profile)
    value = connection.read_secret("Leaked value")
    if not value:
        raise CliError("no value given (type it at the prompt, or pipe it on stdin)", Exit.INVALID)
    with open_client(target_url, None) as client:
        client.report_leak(value)
    note("Report received: if the value was valid, its token is revoked now.")


def register_service(app: typer.Typer) -> None:
    app.command()(audit)
    app.command()(verify)
    app.command("report-leak")(report_leak)
