"""The service under test, wired as the server wires it, on a real migrated database."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.rules import Lifetimes, build_spec
from apitokens.domain.tokens import SYSTEM, Actor, Principal, TokenSpec
from apitokens.domain.values import ValueCodec
from apitokens.service.auth import Authenticator
from apitokens.service.cache import CredentialCache
from apitokens.service.limiter import FailureLimiter
from apitokens.service.tokens import Issued, TokenService
from apitokens.service.usage import UsageRecorder
from apitokens.storage.sql import SqlStore

START = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


class SteppingClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class Harness:
    store: SqlStore
    clock: SteppingClock
    catalog: PermissionCatalog
    usage: UsageRecorder
    tokens: TokenService
    auth: Authenticator

    def spec(
        self, name: str, permissions: tuple[str, ...] = (), blocks: list[str] | None = None
    ) -> TokenSpec:
        return build_spec(self.catalog, name, permissions, blocks)

    def bootstrap(self, name: str = "admin") -> Issued:
        """An administrator token made by the command line (every permission)."""
        spec = build_spec(self.catalog, name, self.catalog.names, [])
        return self.tokens.create(Actor(name, SYSTEM), spec)

    def login(self, value: str, address: str | None = None) -> Principal:
        parsed = ipaddress.ip_address(address) if address else None
        return self.auth.authenticate(value, parsed)

    def create(
        self,
        caller: Principal,
        name: str,
        permissions: tuple[str, ...] = (),
        blocks: list[str] | None = None,
    ) -> Issued:
        return self.tokens.create(caller.actor, self.spec(name, permissions, blocks), caller)


def build_harness(store: SqlStore) -> Harness:
    clock = SteppingClock()
    codec = ValueCodec("apitk")
    cache = CredentialCache()
    usage = UsageRecorder(store)
    limiter = FailureLimiter(limit=1000, window=60.0)
    return Harness(
        store=store,
        clock=clock,
        catalog=PermissionCatalog(),
        usage=usage,
        tokens=TokenService(store, codec, clock, Lifetimes(), cache, usage),
        auth=Authenticator(store, codec, cache, usage, limiter, clock),
    )
