"""Fixtures for webhook and usage tests: an in-process app with a clock that moves only
when told to, its administrator token, and a real receiver on loopback."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receiver import Receiver, running_receiver
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette would rather its TestClient ran on httpx2; on httpx it works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from apitokens.domain.rules import build_spec
from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.http.app import create_app
from apitokens.http.state import Runtime
from apitokens.settings import Settings


class ManualClock:
    """Starts at the real time (signatures carry real timestamps) and moves when told."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.moment = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class App:
    client: TestClient
    runtime: Runtime
    clock: ManualClock
    admin: str

    def headers(self, value: str | None = None) -> dict[str, str]:
        return {"X-API-Key": value or self.admin}

    def post(self, path: str, body: Any = None, value: str | None = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers(value))

    def get(self, path: str, value: str | None = None, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(value))

    def delete(self, path: str, value: str | None = None) -> Any:
        return self.client.delete(path, headers=self.headers(value))

    def token(self, name: str, permissions: list[str], **extra: Any) -> dict[str, Any]:
        created = self.post("/api-tokens", {"name": name, "permissions": permissions, **extra})
        assert created.status_code == 200, created.text
        body: dict[str, Any] = created.json()
        return body

    def hook(self, url: str, **extra: Any) -> dict[str, Any]:
        created = self.post("/webhooks", {"url": url, **extra})
        assert created.status_code == 200, created.text
        body: dict[str, Any] = created.json()
        return body

    def send_all(self) -> int:
        """Run the sender until nothing is due now; the number of attempts made."""
        total = 0
        while sent := self.runtime.sender.run_once():
            total += sent
        return total


AppFactory = Callable[..., App]


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[AppFactory]:
    clients: list[TestClient] = []

    def start(**settings: Any) -> App:
        defaults: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path}/t{len(clients)}.db",
            "webhook_allow_private": True,
            # The background loops stay idle: the tests run each pass themselves.
            "webhook_poll_seconds": 60,
            "expiry_scan_seconds": 3600,
            "last_used_flush_seconds": 60,
            "access_log": False,
        }
        clock = ManualClock()
        app = create_app(Settings(**{**defaults, **settings}), clock=clock)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        runtime: Runtime = app.state.runtime
        spec = build_spec(runtime.catalog, "admin", runtime.catalog.names, [])
        admin = runtime.tokens.create(Actor("admin", SYSTEM), spec).value
        return App(client, runtime, clock, admin)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def app(app_factory: AppFactory) -> App:
    return app_factory()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
