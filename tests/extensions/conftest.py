"""Fixtures for the extension tests: the app in process set up for them, and its admin.

The nginx test starts real processes of its own (tests/extensions/nginx_proxy.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
import pytest
from extension_helpers import TRUSTED_LOOPBACK, extension_env

from support.inprocess import InProcessServer, ManualClock
from support.protocols import ApiClientFactory, AppFactory


@pytest.fixture
def ext_server_factory(app_factory: AppFactory) -> AppFactory:
    """``app_factory`` with ``extension_env()`` under the given env, behind a trusted
    loopback proxy unless ``args`` says otherwise."""

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
        clock: ManualClock | None = None,
    ) -> InProcessServer:
        merged: dict[str, str | None] = {**extension_env(), **(env or {})}
        chosen = TRUSTED_LOOPBACK if args is None else tuple(args)
        return app_factory(database_url, env=merged, args=chosen, bootstrap=bootstrap, clock=clock)

    return start


@pytest.fixture
def ext_server(ext_server_factory: AppFactory) -> InProcessServer:
    """The app on a fresh store of ``app_backend``: ``reports:read``/``reports:write`` in
    the catalog, 127.0.0.1 a trusted proxy (so tests choose addresses by XFF)."""
    return ext_server_factory()


@pytest.fixture
def admin(api: ApiClientFactory, ext_server: InProcessServer) -> httpx.Client:
    """A client of ``ext_server`` holding every permission."""
    return api(ext_server, ext_server.admin)
