"""Runtime settings: one value, built at the entry point and passed in.

Every field can be set from the environment as ``APITOKENS_<FIELD NAME>`` (for example
``APITOKENS_DATABASE_URL``); the command line overrides the environment.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 3600


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APITOKENS_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./apitokens.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    """Peers whose ``X-Forwarded-For`` is believed (comma-separated CIDR blocks)."""

    token_prefix: str = Field(default="apitk", pattern=r"^[a-z][a-z0-9]{1,15}$")
    """The fixed start of every token value, so secret scanners can recognise them."""

    last_used_flush_seconds: float = Field(default=2.0, gt=0, le=60)
    """How long ``lastUsedAt`` may lag: usage is coalesced in memory and written this often."""

    cache_poll_seconds: float = Field(default=0.25, gt=0, le=5)
    """How often an instance checks the database for token changes made by other instances."""

    change_feed_retention_seconds: int = Field(default=3600, ge=60)
    """How long the change feed keeps entries; an instance further behind drops its cache."""

    max_lifetime_seconds: int | None = Field(default=None, gt=0)
    """Longest lifetime a token may be given; ``None`` allows tokens that never expire."""

    default_lifetime_seconds: int | None = Field(default=None, gt=0)
    """Lifetime given to a token created without ``expiresAt``; ``None`` means never expires."""

    auth_failure_limit: int = Field(default=30, ge=1)
    """Failed authentications allowed from one address per window before it gets 429."""

    auth_failure_window_seconds: float = Field(default=60.0, gt=0)

    rotation_limit: int = Field(default=10, ge=1)
    """Rotations of one token allowed per window (per instance) before it gets 429."""

    rotation_window_seconds: float = Field(default=60.0, gt=0)

    leak_report_limit: int = Field(default=10, ge=1)
    """Leaked-value reports accepted from one address per window before it gets 429."""

    leak_report_window_seconds: float = Field(default=60.0, gt=0)

    extra_permissions: Annotated[tuple[str, ...], NoDecode] = ()
    """Permission names for other services protected through ``/verify`` (comma-separated)."""

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    log_level: str = "info"
    access_log: bool = True
    metrics: bool = True
    """Serve Prometheus metrics at ``/metrics`` (unauthenticated; restrict it at the proxy)."""

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
