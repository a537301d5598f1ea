"""``apitokens login``, ``logout`` and ``profiles``: a URL and token kept for later commands.

The token is read from a hidden prompt on a terminal, else from the first line of stdin;
never from the command line. It is checked against the server (``GET /api-tokens/self``)
before it is saved, unless ``--no-verify``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from apitokens.cli import connection
from apitokens.cli.connection import DEFAULT_URL, Config, Profile, check_profile_name
from apitokens.cli.errors import CliError, Exit
from apitokens.cli.tokens import note, open_client, print_json, stdout

ProfileName = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        show_default=False,
        help="Profile name (default: the default profile, or 'default').",
    ),
]


def login(
    url: Annotated[
        str,
        typer.Option(
            "--url", metavar="URL", envvar="APITOKENS_URL", help="Base URL of the server."
        ),
    ] = DEFAULT_URL,
    profile: ProfileName = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check the token with the server first.")
    ] = True,
) -> None:
    """Save URL and token as a profile (the token from a prompt, or stdin's first line).

    Later commands then need neither --url nor a token. The file is
    $XDG_CONFIG_HOME/apitokens/config.toml (~/.config/apitokens/), mode 0600.
    """
    name = check_profile_name(profile or "default")
    token = connection.read_secret(f"Token for {url}")
    if not token:
        raise CliError("no token given (type it at the prompt, or pipe it on stdin)", Exit.INVALID)
    identity = ""
    if verify:
        with open_client(url, token) as client:
            me = client.self_token()
        identity = f" as token {me.id} ({me.name!r})"
    config = connection.load_config()
    profiles = dict(config.profiles)
    profiles[name] = Profile(name, url.rstrip("/"), token)
    path = connection.save_config(Config(name, profiles))
    note(f"Logged in to {url}{identity}; saved as profile {name!r} (the default) in {path}.")


def logout(profile: ProfileName = None) -> None:
    """Forget a profile's URL and token (default: the default profile)."""
    config = connection.load_config()
    name = profile or config.default or "default"
    if name not in config.profiles:
        raise CliError(f"no profile {name!r} in {connection.config_path()}", Exit.NOT_FOUND)
    profiles = {key: value for key, value in config.profiles.items() if key != name}
    default = None if config.default == name else config.default
    connection.save_config(Config(default, profiles))
    note(f"Removed profile {name!r}.")


def profiles(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    use: Annotated[
        str | None,
        typer.Option("--use", metavar="NAME", help="Make this profile the default."),
    ] = None,
) -> None:
    """List the saved profiles (never their tokens), or pick the default with --use."""
    config = connection.load_config()
    if use is not None:
        if use not in config.profiles:
            raise CliError(f"no profile {use!r} in {connection.config_path()}", Exit.NOT_FOUND)
        config = Config(use, config.profiles)
        connection.save_config(config)
        note(f"Profile {use!r} is now the default.")
    rows = connection.describe(config)
    if as_json:
        print_json(rows)
        return
    from rich import box  # imported by the commands that print a table, not at every start
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD)
    for header in ("Profile", "URL", "Default"):
        table.add_column(header)
    for row in rows:
        table.add_row(
            Text(str(row["name"])), Text(str(row["url"])), "yes" if row["default"] else ""
        )
    stdout().print(table)


def register_account(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(profiles)
