"""``apitokens webhooks`` and ``apitokens tokens usage``: webhooks and daily usage over HTTP.

Same conventions as ``apitokens tokens``: where to connect and the token by the rules of
`apitokens.cli.connection` (``--url``/``APITOKENS_URL``, ``--profile``, ``APITOKENS_TOKEN``,
``--token-stdin``; a ``--token`` argument is refused), a Rich table by default, JSON with
``--json``; exit 1 when the server refuses (its message on stderr), 5 when it cannot be
reached, 2 for a usage error. A webhook's secret is printed only by ``create``, once, with a
reminder on stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from apitokens.cli import connection
from apitokens.cli.connection import ProfileOpt, TokenRefusedOpt, TokenStdinOpt, UrlOpt
from apitokens.cli.errors import CliError, Exit

# httpx and Rich are imported where a command uses them, not at every start of ``apitokens``.
if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table

_REMINDER: Final = "Store this secret now: it will not be shown again."
_BAR_WIDTH: Final = 40

webhooks_app = typer.Typer(
    help="Register webhooks for token events and look at their deliveries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a token value or a secret
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
IdArg = Annotated[str, typer.Argument(help="Webhook id.")]


@webhooks_app.command("list")
def list_webhooks(
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """List webhooks, newest first (all pages)."""
    with _http(connection.target(url, profile, token_stdin, token)) as http:
        hooks = _all(http, "/webhooks")
    if as_json:
        _print_json(hooks)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("ID", no_wrap=True)  # whole, so it can be copied into the next command
    for header in ("URL", "Events", "Description", "Created"):
        table.add_column(header, overflow="fold", min_width=6)
    for hook in hooks:
        events = hook["events"]
        summary = "all" if len(events) >= 8 else "\n".join(events)
        cells = (hook["id"], hook["url"], summary, hook["description"], hook["createdAt"])
        table.add_row(*(Text(cell) for cell in cells))
    _stdout().print(table)


@webhooks_app.command("create")
def create_webhook(
    target: Annotated[str, typer.Argument(metavar="URL", help="Where to POST the events.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="An event type to send (repeatable; default all)."),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """Register a webhook and print its signing secret, once."""
    body: dict[str, Any] = {"url": target, "description": description}
    if event:
        body["events"] = event
    with _http(connection.target(url, profile, token_stdin, token)) as http:
        hook = _checked(http.post("/webhooks", json=body))
    if as_json:
        _print_json(hook)
    else:
        typer.echo(f"Created webhook {hook['id']} for {hook['url']}.")
        typer.echo(hook["secret"])
    typer.echo(_REMINDER, err=True)


@webhooks_app.command("delete")
def delete_webhook(
    webhook_id: IdArg,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """Delete a webhook; its undelivered events are dropped."""
    with _http(connection.target(url, profile, token_stdin, token)) as http:
        _checked(http.delete(f"/webhooks/{webhook_id}"))
    typer.echo(f"Deleted webhook {webhook_id}.")


@webhooks_app.command("deliveries")
def list_deliveries(
    webhook_id: IdArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token_stdin: TokenStdinOpt = False,
    token: TokenRefusedOpt = None,
) -> None:
    """Show a webhook's most recent deliveries: status, attempts, last answer."""
    with _http(connection.target(url, profile, token_stdin, token)) as http:
        page = _checked(http.get(f"/webhooks/{webhook_id}/deliveries", params={"limit": limit}))
    deliveries = page["results"]
    if as_json:
        _print_json(deliveries)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("ID", no_wrap=True)  # whole, so it can be copied
    for header in ("Event", "Status", "Attempts", "Last status", "Next attempt"):
        table.add_column(header, overflow="fold", min_width=6)
    for item in deliveries:
        cells = (
            item["id"],
            item["event"],
            item["status"],
            str(item["attempts"]),
            str(item["lastStatusCode"] or "-"),
            item["nextAttemptAt"] or "-",
        )
        table.add_row(*(Text(cell) for cell in cells))
    _stdout().print(table)


def token_usage(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id, or 'self'.")],
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="How many days.")] = 30,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    profile: ProfileOpt = None,
    token: TokenRefusedOpt = None,
) -> None:
    """Show a token's successful authentications per UTC day, as a bar chart."""
    from apitokens.cli.tokens import target_for  # its group's options: apitokens tokens ...

    with _http(target_for(ctx, url, profile, token)) as http:
        page = _checked(http.get(f"/api-tokens/{token_id}/usage", params={"days": days}))
    results = page["results"]
    if as_json:
        _print_json(results)
        return
    _stdout().print(usage_chart(results))


def usage_chart(results: list[dict[str, Any]]) -> Table:
    """One row per day: the date, a bar scaled to the busiest day, the count."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    most = max((day["requests"] for day in results), default=0)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("Date (UTC)", no_wrap=True)
    table.add_column("Requests", justify="right")
    table.add_column("", no_wrap=True)
    for day in results:
        count = day["requests"]
        width = round(count / most * _BAR_WIDTH) if most else 0
        bar = "█" * max(width, 1 if count else 0)
        table.add_row(day["date"], str(count), Text(bar, style="cyan"))
    table.caption = f"{sum(d['requests'] for d in results)} requests in {len(results)} days"
    return table


@contextmanager
def _http(target: connection.Target) -> Iterator[httpx.Client]:
    import httpx

    from apitokens.client.wire import APIKeyAuth, plain_http_transport

    try:
        auth = APIKeyAuth(target.token)
    except ValueError as error:  # a malformed token, refused before any request
        raise CliError(str(error), Exit.INVALID) from None
    try:
        base_url = target.url.rstrip("/")
        transport = plain_http_transport(base_url)
        with httpx.Client(base_url=base_url, auth=auth, timeout=10.0, transport=transport) as http:
            yield http
    except httpx.HTTPError as error:
        raise CliError(
            f"cannot reach the server at {target.url}: {type(error).__name__}", Exit.UNREACHABLE
        ) from None


def _checked(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        message = response.json()["message"]
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase
    typer.echo(f"error: {response.status_code}: {message}", err=True)
    raise typer.Exit(1)


def _all(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = _checked(http.get(path, params=params))
        items.extend(page["results"])
        cursor = page.get("next")
        if not cursor:
            return items


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def _stdout() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200
    return console


def register(app: typer.Typer, tokens_app: typer.Typer | None) -> None:
    """Add ``apitokens webhooks`` and ``apitokens tokens usage``."""
    app.add_typer(webhooks_app, name="webhooks", help="Manage webhooks on a running server.")
    if tokens_app is not None:
        tokens_app.command("usage")(token_usage)
