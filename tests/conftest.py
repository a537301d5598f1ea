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

In-process fixtures (the app in the test process, no server process; tests/support/inprocess.py):

- ``app_backend`` -> ``"memory"`` | ``"sqlite"`` (| ``"postgresql"``): the store of the
  in-process app. Default memory and SQLite; a module widens it with
  ``pytestmark = pytest.mark.app_backends("memory", "sqlite", "postgresql")``.
- ``app_database_url`` -> ``str``: a fresh database of ``app_backend`` (``memory://`` for
  the in-memory store).
- ``app_factory(database_url=None, env=None, args=None, bootstrap=True, clock=None)``
  -> ``InProcessServer`` (started): the same settings a server process would get from
  ``env`` and ``args``; ``.client(token)``, ``.clock``, ``.flush()``, ``.restart()``,
  ``.log_text()``. Every one is stopped at test end.
- ``app_server`` -> ``InProcessServer`` on ``app_database_url``.
- ``api(server, token=None)`` accepts an ``InProcessServer`` (or its ``url``) too.

Servers never see ``APITOKENS_*`` variables of the shell that runs pytest: pass ``env=``.
Servers and in-process apps answer a refused key at once (``APITOKENS_REFUSAL_DELAY_SECONDS``
0) unless ``env`` sets the delay: tests send refused keys by the hundred, and the wait
itself is tested in ``tests/service/test_service_auth_outcomes.py``.
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

from apitokens.wiring import MEMORY_URL
from support.clients import HasUrl
from support.clients import api as make_client
from support.databases import backend_of, migrated_database, sqlite_url
from support.inprocess import (
    REFUSAL_DELAY,
    InProcessServer,
    ManualClock,
    bootstrap_here,
    lookup,
)
from support.postgres import (
    REQUIRE_POSTGRES_ENV,
    PostgresCluster,
    ReusedDatabases,
    env_flag,
    find_pg_bindir,
    require_postgres,
)
from support.processes import CLEAN_EXIT_STATUSES, RunningServer, run_bootstrap
from support.protocols import ApiClientFactory, AppFactory, BootstrapToken, ServerFactory

BACKENDS = ("sqlite", "postgresql")
APP_BACKENDS = ("memory", "sqlite", "postgresql")
DEFAULT_APP_BACKENDS = ("memory", "sqlite")
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
    config.addinivalue_line(
        "markers",
        "app_backends(*names): stores the in-process app runs on for this test "
        f"(default {', '.join(DEFAULT_APP_BACKENDS)}; any of {', '.join(APP_BACKENDS)})",
    )
    unknown = sorted(set(_requested_backends()) - set(APP_BACKENDS))
    if unknown:
        raise pytest.UsageError(f"{BACKENDS_ENV}: unknown backend(s) {unknown}; use {APP_BACKENDS}")
    if env_flag(REQUIRE_POSTGRES_ENV) and "postgresql" not in _requested_backends():
        raise pytest.UsageError(f"{REQUIRE_POSTGRES_ENV}=1 but {BACKENDS_ENV} excludes postgresql")
    # A SIGTERM to pytest must still run fixture teardown (and so stop every server).
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _sigterm_to_keyboard_interrupt)


_WORKER_FIGURES = pytest.StashKey[list[tuple[str, str]]]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist controller: collect the hardening figures each worker measured."""
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    rows = node.workeroutput.get("hardening_figures", [])  # type: ignore[attr-defined]
    config.stash.setdefault(_WORKER_FIGURES, []).extend(tuple(row) for row in rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The hardening figures of every xdist worker (without xdist, tests/hardening/conftest.py
    prints them itself)."""
    rows = terminalreporter.config.stash.get(_WORKER_FIGURES, [])
    if rows:
        terminalreporter.section("hardening figures")
        for what, figure in rows:
            terminalreporter.write_line(f"  {what:<58} {figure}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    bindir = find_pg_bindir()
    return [
        f"apitokens backends: {', '.join(_requested_backends())}; "
        f"PostgreSQL binaries: {bindir or 'missing'}; "
        f"{REQUIRE_POSTGRES_ENV}={os.environ.get(REQUIRE_POSTGRES_ENV, '')!r}"
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a ``slow`` test run first, each module's tests together and in order.

    pytest-xdist's worksteal gives each worker a contiguous share of this order and lets an
    idle worker take the end of another's: with the long tests (the bench smoke,
    schemathesis, the scale-out tests) at the front, what is left at the end is short, and
    neither worker waits on the other's last long test.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow)  # stable: modules stay whole


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``app_backend`` by the test's ``app_backends`` marker (or the default),
    limited by ``APITOKENS_TEST_BACKENDS`` when it is set."""
    if "app_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("app_backends")
    names = tuple(marker.args) if marker is not None else DEFAULT_APP_BACKENDS
    unknown = sorted(set(names) - set(APP_BACKENDS))
    if unknown:
        raise pytest.UsageError(f"app_backends: unknown backend(s) {unknown}")
    if os.environ.get(BACKENDS_ENV, "").strip():
        requested = set(_requested_backends())
        names = tuple(name for name in names if name in requested)
    metafunc.parametrize(
        "app_backend",
        [
            pytest.param(
                name, id=name, marks=[pytest.mark.postgres] if name == "postgresql" else []
            )
            for name in names
        ],
        indirect=True,
    )


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
def app_backend(request: pytest.FixtureRequest) -> str:
    """The store of this test's in-process app (parametrized by ``pytest_generate_tests``)."""
    name: str = request.param
    if name == "postgresql":
        require_postgres()
    return name


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest schema and empty, to copy: a test then skips the
    migrations, and the app's own upgrade at start finds nothing to do."""
    from apitokens.storage.migrate import upgrade
    from apitokens.storage.sql import SqlStore

    path = tmp_path_factory.mktemp("sqlite-template") / "apitokens.db"
    store = SqlStore(sqlite_url(path))
    try:
        upgrade(store.engine)
    finally:
        store.close()
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template(pg_cluster: PostgresCluster) -> str:
    """A PostgreSQL database at the newest schema and empty, the template of the in-process
    apps' databases (``CREATE DATABASE ... TEMPLATE``): the same head start as SQLite's."""
    from apitokens.storage.migrate import upgrade
    from apitokens.storage.sql import SqlStore

    name = f"template_{secrets.token_hex(4)}"
    store = SqlStore(pg_cluster.create_database(name))
    try:
        upgrade(store.engine)
    finally:
        store.close()
    return name


@pytest.fixture
def app_database_url(
    app_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A fresh database of ``app_backend``; ``memory://`` stands for a new ``MemoryStore``.
    SQLite files start as a copy of ``migrated_sqlite_template``; PostgreSQL databases are
    copies of ``migrated_postgres_template``, emptied and reused (``ReusedDatabases``)."""
    if app_backend == "memory":
        yield MEMORY_URL
        return
    with migrated_database(app_backend, request, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """An empty database of the current ``backend`` at the newest schema: a copy of the
    migrated template (the migrations themselves are tested in tests/storage)."""
    with migrated_database(backend, request, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def reused_postgres_databases(
    pg_cluster: PostgresCluster, migrated_postgres_template: str
) -> ReusedDatabases:
    """Copies of ``migrated_postgres_template``, emptied and reused from test to test."""
    return ReusedDatabases(pg_cluster, migrated_postgres_template)


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
        env = {REFUSAL_DELAY: "0", **(env or {})}
        admin = bootstrap_here(url, env) if bootstrap else None
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
def app_factory(request: pytest.FixtureRequest, app_backend: str) -> Iterator[AppFactory]:
    """Start in-process apps; each is bootstrapped (``.admin``) unless ``bootstrap=False``.
    Without ``database_url``, each app gets the test's ``app_database_url``."""
    started: list[InProcessServer] = []

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
        clock: ManualClock | None = None,
    ) -> InProcessServer:
        url = database_url or request.getfixturevalue("app_database_url")
        backend = "memory" if url == MEMORY_URL else backend_of(url)
        server = InProcessServer(
            url, backend=backend, env=env, args=args or (), clock=clock, bootstrap=bootstrap
        )
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.close()


@pytest.fixture
def app_server(app_factory: AppFactory, app_database_url: str) -> InProcessServer:
    """An in-process app with an admin token, on a fresh store of ``app_backend``."""
    return app_factory(app_database_url)


@pytest.fixture
def api() -> Iterator[ApiClientFactory]:
    """``api(server, token=None) -> httpx.Client``; the clients are closed at test end."""
    clients: list[httpx.Client] = []

    def client_for(server: HasUrl | str, token: str | None = None) -> httpx.Client:
        app = lookup(server) if isinstance(server, str) else server
        if isinstance(app, InProcessServer):
            return app.client(token)
        client = make_client(server, token)
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()
