"""The token record and the rules that decide what a presented token may do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from apitokens.domain.network import (
    IPAddress,
    IPNetwork,
    address_allowed,
    address_text,
    networks_of,
)
from apitokens.domain.permissions import service_of

SYSTEM = "system"
MAX_RECENT_IPS = 5
API_TOKEN = "api-token"  # noqa: S105 - an actor type


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: an API token (``api-token``) or the command line (``system``)."""

    id: str
    type: str


@dataclass(frozen=True, slots=True)
class Token:
    """A stored token, without its value (the service never keeps the value)."""

    id: str
    name: str
    permissions: tuple[str, ...]
    allowed_cidr_blocks: tuple[str, ...]
    created_at: datetime
    created_by: Actor
    updated_at: datetime | None = None
    updated_by: Actor | None = None
    rotated_at: datetime | None = None
    last_used_at: datetime | None = None
    last_used_ips: tuple[str, ...] = ()
    expires_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def with_usage(self, at: datetime | None, ips: tuple[str, ...]) -> Token:
        """This token as seen with usage that is not yet written to the database."""
        if at is None or (self.last_used_at is not None and self.last_used_at >= at):
            return self
        # Spelled out: dataclasses.replace costs several times more, on every GET of self.
        return Token(
            self.id,
            self.name,
            self.permissions,
            self.allowed_cidr_blocks,
            self.created_at,
            self.created_by,
            self.updated_at,
            self.updated_by,
            self.rotated_at,
            at,
            # The usual case, the newest address already first: the stored list as it is.
            self.last_used_ips
            if ips == self.last_used_ips[: len(ips)]
            else tuple(merge_ips(ips, self.last_used_ips)),
            self.expires_at,
        )


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """Validated input for create and update.

    ``permissions`` are upstream names; ``service_permissions`` the operator's extra names
    (None: none on create, keep the current ones on update). A token holds both, in one
    tuple (``Token.permissions``).
    """

    name: str
    permissions: tuple[str, ...]
    allowed_cidr_blocks: tuple[str, ...] | None  # None on update: keep the current blocks
    expires_at: datetime | None
    expires_at_given: bool = False
    service_permissions: tuple[str, ...] | None = None

    def held(self, current: Token | None = None) -> tuple[str, ...]:
        """Every name the token will hold (catalog order: upstream names come first)."""
        service = self.service_permissions
        if service is None:
            service = tuple(service_of(current.permissions)) if current is not None else ()
        return self.permissions + service


@dataclass(frozen=True, slots=True)
class Credential:
    """What the database says about one presented digest."""

    token: Token
    digest: str
    valid_until: datetime | None  # None: the current value; else a rotated-out value
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def of(cls, token: Token, digest: str, valid_until: datetime | None) -> Credential:
        return cls(token, digest, valid_until, networks_of(token.allowed_cidr_blocks))

    def allows(self, address: IPAddress | None) -> bool:
        return address_allowed(address, self.networks)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a token presented from an address.

    ``rotated_out`` is True when the presented value was rotated out and is still in its
    grace period: such a caller may only read (``domain.authorization``).
    """

    token: Token
    address: IPAddress | None
    rotated_out: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(self.token.id, API_TOKEN)

    @property
    def client_ip(self) -> str | None:
        return address_text(self.address)

    def holds(self, permission: str) -> bool:
        return permission in self.token.permissions


def merge_ips(newest: Sequence[str], older: Sequence[str]) -> list[str]:
    """The most recent distinct client addresses, newest first, at most five."""
    merged: dict[str, None] = {}
    for ip in (*newest, *older):
        merged.setdefault(ip, None)
    return list(merged)[:MAX_RECENT_IPS]
