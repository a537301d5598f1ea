"""Fixtures shared by every test: real servers on SQLite and on PostgreSQL.

Fixtures (names and signatures are an API for the whole suite):

- ``backend`` -> ``"sqlite"`` | ``"postgresql"``: parametrizes a test over both backends
  (ids ``sqlite``/``postgresql``; the PostgreSQL case carries the ``postgres`` marker).
  ``APITOKENS_TEST_BACKENDS=sqlite`` (comma list) limits the backends for quick runs.
  Without PostgreSQL binaries the PostgreSQL case is skipped, or fails when
  ``APITOKENS_REQUIRE_POSTGRES=1`` (CI).
- ``pg_cluster`` (session) -> ``PostgresCluster``, started on first use only.
- ``database_url`` -> ``str``: a fresh empty database of the current backend.
- ``sqlite_database_url`` -> ``str``: a fresh SQLite file, for SQLite-only tests.
- ``bootstrap_token(database_url, name="admin", *, force=False) -> str``: runs
  ``apitokens bootstrap`` (a second one on a database needs ``force``).
- ``server_factory(database_url=None, env=None, args=None, bootstrap=True)``
  -> ``RunningServer``: a started server (``.url``, ``.admin``, ``.database_url``,
  ``.stop()``, ``.restart()``, ``.log_text()``...); ``database_url=None`` means the test's
  ``database_url`` fixture. Every server is stopped at test end, and the test fails if
  one does not shut down cleanly on SIGTERM.
- ``server`` -> ``RunningServer`` on ``database_url``; ``sqlite_server`` on SQLite only.
- ``api(server, token=None) -> httpx.Client``: base URL set, ``X-API-Key: token`` sent
  when a token is given, 10 s timeout; closed at test end.

Servers never see ``APITOKENS_*`` variables of the shell that runs pytest: pass ``env=``.
Tuning: ``APITOKENS_TEST_STARTUP_TIMEOUT`` (seconds to wait for ``/healthz``, default 20),
``APITOKENS_TEST_PG_FSYNC=1`` (fsync on in the test cluster; default off).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import httpx
import pytest

from support.clients import HasUrl
from support.clients import api as make_client
from support.databases import sqlite_url
from support.postgres import (
    REQUIRE_POSTGRES_ENV,
    PostgresCluster,
    env_flag,
    find_pg_bindir,
    require_postgres,
)
from support.processes import CLEAN_EXIT_STATUSES, RunningServer, run_bootstrap
from support.protocols import ApiClientFactory, BootstrapToken, ServerFactory

BACKENDS = ("sqlite", "postgresql")
BACKENDS_ENV = "APITOKENS_TEST_BACKENDS"


def _requested_backends() -> list[str]:
    raw = os.environ.get(BACKENDS_ENV, "")
    names = list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    return names or list(BACKENDS)


def _backend_params() -> list[object]:
    return [
        pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
        for name in _requested_backends()
        if name in BACKENDS
    ]


# -- session hooks ------------------------------------------------------------------------


def _sigterm_to_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    unknown = sorted(set(_requested_backends()) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(f"{BACKENDS_ENV}: unknown backend(s) {unknown}; use {BACKENDS}")
    if env_flag(REQUIRE_POSTGRES_ENV) and "postgresql" not in _requested_backends():
        raise pytest.UsageError(f"{REQUIRE_POSTGRES_ENV}=1 but {BACKENDS_ENV} excludes postgresql")
    # A SIGTERM to pytest must still run fixture teardown (and so stop every server).
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _sigterm_to_keyboard_interrupt)


def pytest_report_header(config: pytest.Config) -> list[str]:
    bindir = find_pg_bindir()
    return [
        f"apitokens backends: {', '.join(_requested_backends())}; "
        f"PostgreSQL binaries: {bindir or 'missing'}; "
        f"{REQUIRE_POSTGRES_ENV}={os.environ.get(REQUIRE_POSTGRES_ENV, '')!r}"
    ]


# -- databases ----------------------------------------------------------------------------


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this test case: ``"sqlite"`` or ``"postgresql"``."""
    name: str = request.param
    if name == "postgresql":
        require_postgres()
    return name


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One private PostgreSQL server for the whole session, started on first use."""
    require_postgres()
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the current backend (nothing created in it yet)."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "apitokens.db")
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    cluster.start()  # no-op unless an outage test left it stopped
    name = f"t_{secrets.token_hex(6)}"
    url = cluster.create_database(name)
    yield url
    # This test's servers are stopped after this teardown: drop the database later.
    cluster.drop_database(name, later=True)


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A new, empty SQLite database file, for tests that run on SQLite only."""
    return sqlite_url(tmp_path / "apitokens-sqlite.db")


# -- tokens and servers -------------------------------------------------------------------


@pytest.fixture
def bootstrap_token() -> BootstrapToken:
    """``bootstrap_token(database_url, name="admin")``: run ``apitokens bootstrap``."""

    def bootstrap(database_url: str, name: str = "admin", *, force: bool = False) -> str:
        return run_bootstrap(database_url, name, force=force)

    return bootstrap


def _default_database_url(request: pytest.FixtureRequest) -> str:
    if "backend" not in request.fixturenames:
        raise pytest.UsageError(
            "server_factory() without database_url needs the test to use the `database_url` "
            "(or `backend`) fixture; or pass database_url=sqlite_database_url"
        )
    url: str = request.getfixturevalue("database_url")
    return url


def _shutdown_problem(server: RunningServer) -> str | None:
    status = server.stop()
    if server.needed_sigkill:
        problem = "did not exit within 10 s of SIGTERM and was killed"
    elif status not in CLEAN_EXIT_STATUSES:
        problem = f"exited with status {status} on SIGTERM"
    else:
        return None
    return f"{server!r} {problem}\n--- log tail ---\n{server.log_tail()}"


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers; each is bootstrapped (``.admin``) unless ``bootstrap=False``."""
    started: list[RunningServer] = []

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
    ) -> RunningServer:
        url = database_url or _default_database_url(request)
        admin = run_bootstrap(url, "admin", env=env) if bootstrap else None
        server = RunningServer(
            url, admin=admin, args=args or (), env=env, log_dir=tmp_path / "servers"
        )
        started.append(server)
        return server.start()

    yield start
    problems = [
        problem
        for server in reversed(started)
        if server.is_running() and (problem := _shutdown_problem(server)) is not None
    ]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory: ServerFactory, database_url: str) -> RunningServer:
    """A running server with an admin token, on a fresh database of the current backend."""
    return server_factory(database_url)


@pytest.fixture
def sqlite_server(server_factory: ServerFactory, sqlite_database_url: str) -> RunningServer:
    """A running server with an admin token, on a fresh SQLite database only."""
    return server_factory(sqlite_database_url)


@pytest.fixture
def api() -> Iterator[ApiClientFactory]:
    """``api(server, token=None) -> httpx.Client``; the clients are closed at test end."""
    clients: list[httpx.Client] = []

    def client_for(server: HasUrl | str, token: str | None = None) -> httpx.Client:
        client = make_client(server, token)
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()
