"""Fixtures for webhook and usage tests: an in-process app (``webhook_app.App``), its
administrator token, and a real receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webhook_app import App, AppFactory, ManualClock, TestClient
from webhook_receiver import Receiver, running_receiver

from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.domain.validation import build_spec
from apitokens.http.app import create_app
from apitokens.settings import Settings
from apitokens.wiring import Services as Runtime


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
            "refusal_delay_seconds": 0,  # refusals answered at once
        }
        clock = ManualClock()
        app = create_app(Settings(**{**defaults, **settings}), clock=clock)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        runtime: Runtime = app.state.services
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
