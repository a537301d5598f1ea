"""Fixtures for the HTTP tests: admin clients, servers behind a trusted proxy, shared servers.

Tests that touch only the tokens they create themselves share one server per module and
backend (``shared_server``, ``shared_admin``; a module opts in by overriding ``server``).
Tests that need a server of their own (its options, its log, its database file, a list
with known contents) use ``server_factory`` or the ``server`` of tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from support.clients import api as make_client
from support.databases import database_name, sqlite_url
from support.postgres import PostgresCluster, require_postgres
from support.processes import CLEAN_EXIT_STATUSES, RunningServer, run_bootstrap
from support.protocols import ApiClientFactory

TRUSTED_LOOPBACK = ["--trusted-proxies", "127.0.0.1/32"]
# Many modules' worth of 401s come from 127.0.0.1: keep the per-address limiter out of the way.
SHARED_ENV = {"APITOKENS_AUTH_FAILURE_LIMIT": "1000000"}


def _backend_params() -> list[object]:
    """The backends of ``APITOKENS_TEST_BACKENDS`` (default both), as the root conftest."""
    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    names = [part.strip() for part in raw.split(",") if part.strip()] or ["sqlite", "postgresql"]
    return [
        pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
        for name in dict.fromkeys(names)
        if name in ("sqlite", "postgresql")
    ]


@pytest.fixture
def admin(server: RunningServer, api: ApiClientFactory) -> httpx.Client:
    """A client of ``server`` sending the bootstrapped admin token (every permission)."""
    return api(server, server.admin)


def _shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, args: list[str]
) -> Iterator[RunningServer]:
    """Start a bootstrapped server on a fresh database of ``request.param``; stop it after."""
    directory = tmp_path_factory.mktemp("shared-server")
    cluster: PostgresCluster | None = None
    if request.param == "postgresql":
        require_postgres()
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database()
    else:
        url = sqlite_url(directory / "apitokens.db")
    server = RunningServer(
        url, admin=run_bootstrap(url), args=args, env=SHARED_ENV, log_dir=directory / "servers"
    )
    server.start()
    yield server
    status = server.stop()
    if cluster is not None:
        cluster.drop_database(database_name(url), later=True)
    assert not server.needed_sigkill, f"{server!r} ignored SIGTERM\n{server.log_tail()}"
    assert status in CLEAN_EXIT_STATUSES, f"{server!r} exited {status}\n{server.log_tail()}"


@pytest.fixture(scope="module", params=_backend_params())
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One bootstrapped server for a whole module, per backend."""
    yield from _shared(request, tmp_path_factory, [])


@pytest.fixture(scope="module", params=_backend_params())
def shared_proxied_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Like ``shared_server``, but believing X-Forwarded-For from 127.0.0.1 (the tests)."""
    yield from _shared(request, tmp_path_factory, TRUSTED_LOOPBACK)


@pytest.fixture(scope="module")
def shared_admin(shared_server: RunningServer) -> Iterator[httpx.Client]:
    """The admin client of ``shared_server``."""
    with make_client(shared_server, shared_server.admin) as client:
        yield client
