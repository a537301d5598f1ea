"""Fixtures for the extension tests: a server set up for them, and its admin client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
import pytest
from extension_helpers import TRUSTED_LOOPBACK, extension_env

from support.processes import RunningServer
from support.protocols import ApiClientFactory, ServerFactory


@pytest.fixture
def ext_server_factory(server_factory: ServerFactory, database_url: str) -> ServerFactory:
    """``server_factory`` on the current backend with ``extension_env()`` under the given
    env, behind a trusted loopback proxy unless ``args`` says otherwise."""

    default_url = database_url

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
    ) -> RunningServer:
        merged: dict[str, str | None] = {**extension_env(), **(env or {})}
        chosen = TRUSTED_LOOPBACK if args is None else tuple(args)
        url = database_url or default_url
        return server_factory(url, env=merged, args=chosen, bootstrap=bootstrap)

    return start


@pytest.fixture
def ext_server(ext_server_factory: ServerFactory, database_url: str) -> RunningServer:
    """A server on the current backend: fast flushes, ``reports:read``/``reports:write``
    in the catalog, 127.0.0.1 a trusted proxy (so tests choose addresses by XFF)."""
    return ext_server_factory(database_url)


@pytest.fixture
def admin(api: ApiClientFactory, ext_server: RunningServer) -> httpx.Client:
    """A client of ``ext_server`` holding every permission."""
    return api(ext_server, ext_server.admin)
