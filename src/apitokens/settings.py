"""Runtime settings: one value, built at the entry point and passed in.

Every field can be set from the environment as ``APITOKENS_<FIELD NAME>`` (for example
``APITOKENS_DATABASE_URL``) and, for ``apitokens serve``, as the flag ``--<field-name>``; the
command line overrides the environment. Each field's description is its ``--help`` text.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600
DEFAULT_WEBHOOK_RETRIES = (5, 300, 1800, 7200, 18000, 36000, 21600)
"""5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 6 h: eight attempts over about 23.6 hours."""


_DRIVERLESS_POSTGRES = ("postgres://", "postgresql://")


def data_dir() -> Path:
    """Where the default SQLite database lives: ``$XDG_DATA_HOME/apitokens``, else
    ``~/.local/share/apitokens``. The same for every command, whatever the current directory."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "apitokens"


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'apitokens.db'}"


def normalize_database_url(url: str) -> str:
    """The URL forms people paste, made SQLAlchemy URLs: ``postgres://`` and
    ``postgresql://`` (no driver named) mean PostgreSQL through psycopg 3."""
    url = url.strip()
    for scheme in _DRIVERLESS_POSTGRES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


class Settings(BaseSettings):
    # A field's description is its --help text. Given as `Field(description=...)`, not as
    # attribute docstrings (`use_attribute_docstrings`): reading those back parses this
    # module's source at every import, a tenth of a second at every start of `apitokens`.
    model_config = SettingsConfigDict(env_prefix="APITOKENS_", extra="ignore", frozen=True)

    database_url: str = Field(
        default_factory=default_database_url,
        description=(
            "Database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (default: apitokens.db "
            "in $XDG_DATA_HOME/apitokens, else ~/.local/share/apitokens)."
        ),
    )

    host: str = Field(
        default="127.0.0.1", description="Address to listen on (0.0.0.0 for every interface)."
    )

    port: int = Field(default=8000, ge=0, le=65535, description="TCP port to listen on.")

    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description=(
            "Server processes sharing the port, each with its own cache and connection pool."
        ),
    )

    head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "A request's head must arrive within this long (its body within as long again), or the "
            "connection is closed."
        ),
    )

    keep_alive_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="An idle kept-alive connection is closed after this long.",
    )

    max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Open connections one worker serves; requests on connections beyond get 503.",
    )

    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        default=(),
        description="Peers whose ``X-Forwarded-For`` is believed (comma-separated CIDR blocks).",
    )

    token_prefix: str = Field(
        default="apitk",
        pattern=r"^[a-z][a-z0-9]{1,15}$",
        description="The fixed start of every token value, so secret scanners can recognise them.",
    )

    last_used_flush_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "How long ``lastUsedAt`` may lag: usage is coalesced in memory and written this often."
        ),
    )

    cache_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description=(
            "How often an instance checks the database for token changes made by other instances."
        ),
    )

    change_feed_retention_seconds: int = Field(
        default=3600,
        ge=60,
        description=(
            "How long the change feed keeps entries; an instance further behind drops its cache."
        ),
    )

    max_lifetime_seconds: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Longest lifetime a token may be given; ``None`` allows tokens that never expire."
        ),
    )

    default_lifetime_seconds: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Lifetime given to a token created without ``expiresAt``; ``None`` means never expires."
        ),
    )

    auth_failure_limit: int = Field(
        default=30,
        ge=1,
        description=(
            "Failed authentications allowed from one address per window before it gets 429."
        ),
    )

    auth_failure_window_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The window, in seconds, over which failed authentications are counted.",
    )

    refusal_delay_seconds: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description=(
            "How long a refused request waits for its answer (401, 403 for the address, 429): a "
            "client that sends one request at a time on a connection, as a flood does, gets at "
            "most one refusal per connection per delay. 0 answers at once."
        ),
    )

    rotation_limit: int = Field(
        default=10,
        ge=1,
        description="Rotations of one token allowed per window (per instance) before it gets 429.",
    )

    rotation_window_seconds: float = Field(default=60.0, gt=0)

    leak_report_limit: int = Field(
        default=10,
        ge=1,
        description="Leaked-value reports accepted from one address per window before it gets 429.",
    )

    leak_report_window_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The window, in seconds, over which leaked-value reports are counted.",
    )

    extra_permissions: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description=(
            "Permission names for other services protected through ``/verify`` (comma-separated)."
        ),
    )

    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to loopback, private or link-local addresses.",
    )

    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description=(
            "How long a receiver has to answer a delivery before the attempt counts as failed."
        ),
    )

    webhook_retry_seconds: Annotated[tuple[int, ...], NoDecode] = Field(
        default=DEFAULT_WEBHOOK_RETRIES,
        description=(
            "Delays before each retry of a failed delivery (comma-separated seconds); after the "
            "last one the delivery is marked failed. The default spans about 24 hours."
        ),
    )

    webhook_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="How often an instance looks for deliveries that are due.",
    )

    expiry_warnings: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(604800, 86400),
        description=(
            "Send ``api_token.expiring`` this many seconds before expiry (comma-separated)."
        ),
    )

    expiry_scan_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often an instance looks for tokens that expire soon or expired.",
    )

    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes (larger gets 413).",
    )

    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info",
        description="Lowest level of log line written (debug, info, warning, error, critical).",
    )

    log_format: Literal["auto", "console", "json"] = Field(
        default="auto",
        description=(
            "Log lines as readable text (console) or one JSON object each (json); auto picks "
            "console on a terminal and JSON otherwise."
        ),
    )

    access_log: bool = Field(
        default=True,
        description=(
            "Log one line per request (method, route, status, duration, token id, client address)."
        ),
    )

    metrics: bool = Field(
        default=True,
        description=(
            "Serve Prometheus metrics at ``/metrics`` (unauthenticated; restrict it at the proxy)."
        ),
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _normalize_url(cls, url: str) -> str:
        return normalize_database_url(url)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, raw: object) -> object:
        return raw.lower() if isinstance(raw, str) else raw

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, raw: object) -> object:
        if isinstance(raw, str):
            return tuple(
                ipaddress.ip_network(part.strip(), strict=False)
                for part in raw.split(",")
                if part.strip()
            )
        return raw

    @field_validator("extra_permissions", mode="before")
    @classmethod
    def _parse_permissions(cls, raw: object) -> object:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw

    @field_validator("webhook_retry_seconds", "expiry_warnings", mode="before")
    @classmethod
    def _parse_seconds(cls, raw: object) -> object:
        if isinstance(raw, str):
            try:
                return tuple(int(part) for part in raw.split(",") if part.strip())
            except ValueError:
                raise ValueError("must be whole seconds, comma-separated") from None
        return raw

    @field_validator("webhook_retry_seconds", "expiry_warnings")
    @classmethod
    def _check_seconds(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(value <= 0 or value > 366 * 86400 for value in values):
            raise ValueError("each value must be between 1 and 31622400 seconds")
        return values
