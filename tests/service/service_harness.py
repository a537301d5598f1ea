"""The services under test, wired by the composition root, on a store of each backend."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apitokens.bootstrap import admin_spec
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.tokens import SYSTEM, Actor, Principal, TokenSpec
from apitokens.domain.validation import build_spec
from apitokens.service.auth import Authenticator
from apitokens.service.tokens import Issued, TokenService
from apitokens.service.usage import UsageRecorder
from apitokens.settings import Settings
from apitokens.storage.port import Store
from apitokens.wiring import Services, build

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
    services: Services
    store: Store
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
        spec = admin_spec(self.catalog, name)
        return self.tokens.create(Actor(name, SYSTEM), spec)

    def login(self, value: str | None, address: str | None = None) -> Principal:
        parsed = ipaddress.ip_address(address) if address else None
        return asyncio.run(self.auth.authenticate(value, parsed))

    def create(
        self,
        caller: Principal,
        name: str,
        permissions: tuple[str, ...] = (),
        blocks: list[str] | None = None,
    ) -> Issued:
        return self.tokens.create(caller.actor, self.spec(name, permissions, blocks), caller)


def build_harness(store: Store, **settings: object) -> Harness:
    clock = SteppingClock()
    services = build(
        Settings(auth_failure_limit=1000, refusal_delay_seconds=0, **settings),  # type: ignore[arg-type]
        store=store,
        clock=clock,
    )
    services.background.prepare()
    return Harness(
        services=services,
        store=store,
        clock=clock,
        catalog=services.catalog,
        usage=services.usage,
        tokens=services.tokens,
        auth=services.auth,
    )
