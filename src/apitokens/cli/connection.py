"""Where the HTTP commands connect, and with which token: options, environment, profiles.

The URL: ``--url``, else ``APITOKENS_URL``, else the profile's, else http://127.0.0.1:8000.
The token: ``--token-stdin`` (first line of stdin), else ``APITOKENS_TOKEN``, else the
profile's (only when the URL is the profile's: a profile's token is never sent elsewhere),
else a hidden prompt on a terminal. Never from a command-line argument, which every user of
the machine can read in the process list.

Profiles live in ``$XDG_CONFIG_HOME/apitokens/config.toml`` (``~/.config/apitokens/``),
a file created with mode 0600 in a directory of mode 0700, written by ``apitokens login``::

    default = "work"
    [profiles.work]
    url = "https://tokens.example.com"
    token = "apitk_..."

The profile used: ``--profile``, else ``APITOKENS_PROFILE``, else the one whose URL is the
``--url`` given, else the file's ``default``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from apitokens.cli.errors import CliError, Exit

DEFAULT_URL: Final = "http://127.0.0.1:8000"
_PROFILE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        show_default=False,
        help=f"Base URL of the server (env APITOKENS_URL; else the profile's; else {DEFAULT_URL}).",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        show_default=False,
        help="Profile saved by `apitokens login` (env APITOKENS_PROFILE; else the default one).",
    ),
]
TokenStdinOpt = Annotated[
    bool,
    typer.Option(
        "--token-stdin",
        help="Read the token from the first line of stdin (else APITOKENS_TOKEN, the profile, "
        "or a prompt).",
    ),
]
TokenRefusedOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        hidden=True,
        show_default=False,
        help="Refused: a token on the command line is visible in the process list.",
    ),
]


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "apitokens"


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    token: str

    def __repr__(self) -> str:
        return f"Profile(name={self.name!r}, url={self.url!r})"


@dataclass(frozen=True)
class Config:
    default: str | None
    profiles: dict[str, Profile]


def load_config() -> Config:
    path = config_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config(None, {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CliError(
            f"cannot read {path}: {type(error).__name__}: fix or remove it", Exit.INVALID
        ) from None
    profiles: dict[str, Profile] = {}
    for name, entry in (raw.get("profiles") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            profiles[name] = Profile(name, entry["url"], str(entry.get("token") or ""))
    default = raw.get("default")
    return Config(default if isinstance(default, str) else None, profiles)


def _quoted(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def save_config(config: Config) -> Path:
    """Write the file atomically, mode 0600 from its first byte, in a 0700 directory."""
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    if config.default is not None:
        lines.append(f"default = {_quoted(config.default)}")
    for profile in config.profiles.values():
        lines += [
            "",
            f"[profiles.{_quoted(profile.name)}]",
            f"url = {_quoted(profile.url)}",
            f"token = {_quoted(profile.token)}",
        ]
    path = config_path()
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def check_profile_name(name: str) -> str:
    if not _PROFILE_NAME.fullmatch(name):
        raise CliError(
            f"invalid profile name {name!r}: letters, digits, '_', '.', '-' (up to 64)",
            Exit.INVALID,
        )
    return name


def refuse_token_argument(token: str | None) -> None:
    if token is not None:
        raise CliError(
            "--token is refused: a token on the command line is visible to every user in the "
            "process list; use `apitokens login`, APITOKENS_TOKEN or --token-stdin",
            Exit.INVALID,
        )


def read_secret(prompt: str) -> str:
    """A secret from a hidden prompt on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        value = str(typer.prompt(prompt, hide_input=True, err=True))
    else:
        value = sys.stdin.readline()
    return value.strip()


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    profile: str | None

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, profile={self.profile!r})"


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _pick_profile(config: Config, name: str | None, url: str | None) -> Profile | None:
    if name is not None:
        found = config.profiles.get(name)
        if found is None:
            raise CliError(
                f"no profile {name!r} in {config_path()}: run `apitokens login --profile "
                f"{name} --url URL`",
                Exit.NOT_FOUND,
            )
        return found
    if url is not None:
        return next((p for p in config.profiles.values() if _same_url(p.url, url)), None)
    if config.default is not None:
        return config.profiles.get(config.default)
    return None


def resolve_url(profile: str | None) -> str:
    """The URL alone (for anonymous calls): APITOKENS_URL, else the profile's, else default."""
    url = os.environ.get("APITOKENS_URL") or None
    if url is not None:
        return url
    chosen = _pick_profile(load_config(), profile or os.environ.get("APITOKENS_PROFILE"), None)
    return chosen.url if chosen is not None else DEFAULT_URL


def resolve(url: str | None, profile: str | None, token_stdin: bool) -> Target:
    """The URL and token to use, by the rules in this module's docstring."""
    url = url or os.environ.get("APITOKENS_URL") or None
    profile = profile or os.environ.get("APITOKENS_PROFILE") or None
    chosen = _pick_profile(load_config(), profile, url)
    if url is None:
        url = chosen.url if chosen is not None else DEFAULT_URL
    if chosen is not None and not _same_url(chosen.url, url):
        chosen = None  # a profile's token is only ever sent to the profile's URL
    token: str | None
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = os.environ.get("APITOKENS_TOKEN") or None
    if token is None and chosen is not None and chosen.token:
        token = chosen.token
    if token is None and sys.stdin.isatty():
        token = read_secret(f"Token for {url}")
    if not token:
        raise CliError(
            f"no token for {url}: run `apitokens login --url {url}`, set APITOKENS_TOKEN, "
            "or pass --token-stdin",
            Exit.INVALID,
        )
    return Target(url, token, chosen.name if chosen is not None else None)


def target(
    url: str | None, profile: str | None, token_stdin: bool, token_argument: str | None
) -> Target:
    """``resolve``, after refusing a ``--token`` argument: what a command connects with."""
    refuse_token_argument(token_argument)
    return resolve(url, profile, token_stdin)


def describe(config: Config) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "url": p.url, "default": p.name == config.default}
        for p in config.profiles.values()
    ]
