"""Fixtures for the HTTP tests: the app in process, on a fresh store per test.

Every test here talks to ``create_app(...)`` through httpx (tests/support/inprocess.py),
on each store of ``app_backend`` (memory and SQLite; a module adds PostgreSQL with
``pytestmark = pytest.mark.app_backends(...)``). Time is the app's ``ManualClock``
(``server.clock``): a test steps it instead of sleeping. ``server.flush()`` writes pending
usage at once, as the periodic flush would.
"""

from __future__ import annotations

import httpx
import pytest

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory

TRUSTED_LOOPBACK = ["--trusted-proxies", "127.0.0.1/32"]


@pytest.fixture
def server(app_server: InProcessServer) -> InProcessServer:
    """The app on a fresh store of ``app_backend``, with an admin token."""
    return app_server


@pytest.fixture
def proxied_server(app_factory: AppFactory) -> InProcessServer:
    """Like ``server``, but believing X-Forwarded-For from 127.0.0.1 (the tests)."""
    return app_factory(args=TRUSTED_LOOPBACK)


@pytest.fixture
def admin(server: InProcessServer, api: ApiClientFactory) -> httpx.Client:
    """A client of ``server`` sending the bootstrapped admin token (every permission)."""
    return api(server, server.admin)
