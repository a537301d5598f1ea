"""Fixtures for the hardening suites.

- ``ledger`` (session): every token value the suites saw issued; each server started here
  is checked at teardown for any of them in its log (the no-leak promise, on every run).
- ``hardened_factory(database_url=None, env=None, args=None, bootstrap=True)``: like
  ``server_factory``, with ``HARDENED_ENV`` under ``env`` and 127.0.0.1/::1 as trusted
  proxies unless ``args`` says otherwise.
- ``hardened_server``: one such server on the test's backend.
- ``shared_hardened`` (module, per backend): one such server for a whole module.
- ``hardened_app_factory(database_url=None, env=None, args=None, bootstrap=True,
  clock=None)`` and ``hardened_app``: the same settings, for the app in process
  (tests/support/inprocess.py) on ``app_backend``; its log is checked the same way.
- ``hardened_process`` (module): one hardened server process on SQLite, for the tests
  about HTTP on the wire (request heads, raw bytes, memory of the process).
- ``client(server_or_url, token=None)``: an ``httpx.Client`` that records issued values
  (of a server process or of an in-process app).
- ``figures``: measured numbers, printed at the end of the session ("hardening figures").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import httpx
import pytest
from hardening_support import (
    HARDENED_ENV,
    TRUSTED_PROXY_ARGS,
    Figures,
    ValueLedger,
    backend_params,
    recording_app_client,
    recording_client,
)

from support.databases import database_name, sqlite_url
from support.inprocess import InProcessServer, ManualClock, bootstrap_here, lookup
from support.postgres import PostgresCluster, require_postgres
from support.processes import CLEAN_EXIT_STATUSES, RunningServer
from support.protocols import AppFactory, ServerFactory

_LEDGER = pytest.StashKey[ValueLedger]()
_FIGURES = pytest.StashKey[Figures]()

ClientFactory = Callable[..., httpx.Client]


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> ValueLedger:
    stash = request.config.stash
    if _LEDGER not in stash:
        stash[_LEDGER] = ValueLedger()
    return stash[_LEDGER]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    stash = request.config.stash
    if _FIGURES not in stash:
        stash[_FIGURES] = Figures()
    return stash[_FIGURES]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, hand this worker's figures to the controller, which prints them
    (tests/conftest.py): a worker prints no summary of its own."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["hardening_figures"] = list(session.config.stash.get(_FIGURES, Figures()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = list(terminalreporter.config.stash.get(_FIGURES, Figures()))
    if not rows:
        return
    terminalreporter.section("hardening figures")
    for what, figure in rows:
        terminalreporter.write_line(f"  {what:<58} {figure}")


def assert_log_clean(server: RunningServer | InProcessServer, ledger: ValueLedger) -> None:
    """No value the suites saw issued may appear in the server's log."""
    leaked = ledger.found_in(server.log_text())
    assert not leaked, f"token values in the log of {server!r}: {leaked}"


@pytest.fixture
def hardened_factory(
    server_factory: ServerFactory, ledger: ValueLedger, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    started: list[RunningServer] = []

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
    ) -> RunningServer:
        if database_url is None:
            database_url = request.getfixturevalue("database_url")
        server = server_factory(
            database_url,
            env={**HARDENED_ENV, **(env or {})},
            args=TRUSTED_PROXY_ARGS if args is None else args,
            bootstrap=bootstrap,
        )
        if bootstrap:
            ledger.add(server.admin)
        started.append(server)
        return server

    yield start
    for server in started:
        assert_log_clean(server, ledger)


@pytest.fixture
def hardened_server(hardened_factory: ServerFactory, database_url: str) -> RunningServer:
    return hardened_factory(database_url)


@pytest.fixture
def hardened_app_factory(app_factory: AppFactory, ledger: ValueLedger) -> Iterator[AppFactory]:
    started: list[InProcessServer] = []

    def start(
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
        clock: ManualClock | None = None,
    ) -> InProcessServer:
        server = app_factory(
            database_url,
            env={**HARDENED_ENV, **(env or {})},
            args=TRUSTED_PROXY_ARGS if args is None else args,
            bootstrap=bootstrap,
            clock=clock,
        )
        if bootstrap:
            ledger.add(server.admin)
        started.append(server)
        return server

    yield start
    for server in started:
        assert_log_clean(server, ledger)


@pytest.fixture
def hardened_app(hardened_app_factory: AppFactory) -> InProcessServer:
    """The app in process on a fresh store of ``app_backend``, behind the trusted proxy."""
    return hardened_app_factory()


@pytest.fixture(scope="module")
def hardened_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One hardened ``apitokens serve`` process on SQLite for a whole module."""
    directory = tmp_path_factory.mktemp("hardened-process")
    url = sqlite_url(directory / "apitokens.db")
    server = RunningServer(
        url,
        admin=bootstrap_here(url, HARDENED_ENV),
        args=TRUSTED_PROXY_ARGS,
        env=HARDENED_ENV,
        log_dir=directory / "servers",
    )
    server.start()
    yield server
    status = server.stop()
    ledger = request.config.stash.get(_LEDGER, ValueLedger())
    ledger.add(server.admin)
    assert_log_clean(server, ledger)
    assert not server.needed_sigkill, f"{server!r} ignored SIGTERM\n{server.log_tail()}"
    assert status in CLEAN_EXIT_STATUSES, f"{server!r} exited {status}\n{server.log_tail()}"


@pytest.fixture(scope="module", params=backend_params())
def shared_hardened(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One bootstrapped hardened server per module and backend, behind the trusted proxy."""
    directory = tmp_path_factory.mktemp("hardened")
    cluster: PostgresCluster | None = None
    if request.param == "postgresql":
        require_postgres()
        cluster = request.getfixturevalue("pg_cluster")
        cluster.start()  # no-op unless an outage test left it stopped
        url = cluster.create_database()
    else:
        url = sqlite_url(directory / "apitokens.db")
    server = RunningServer(
        url,
        admin=bootstrap_here(url, HARDENED_ENV),
        args=TRUSTED_PROXY_ARGS,
        env=HARDENED_ENV,
        log_dir=directory / "servers",
    )
    server.start()
    yield server
    status = server.stop()
    if cluster is not None:
        cluster.drop_database(database_name(url), later=True)
    ledger = request.config.stash.get(_LEDGER, ValueLedger())
    ledger.add(server.admin)
    assert_log_clean(server, ledger)
    assert not server.needed_sigkill, f"{server!r} ignored SIGTERM\n{server.log_tail()}"
    assert status in CLEAN_EXIT_STATUSES, f"{server!r} exited {status}\n{server.log_tail()}"


@pytest.fixture
def client(ledger: ValueLedger) -> Iterator[ClientFactory]:
    """``client(server_or_url, token=None, **httpx options)``; closed at test end."""
    made: list[httpx.Client] = []

    def make(
        server: RunningServer | InProcessServer | str, token: str | None = None, **options: object
    ) -> httpx.Client:
        app = lookup(server) if isinstance(server, str) else server
        if isinstance(app, InProcessServer):
            made.append(recording_app_client(ledger, app, token, **options))
            return made[-1]
        base = server if isinstance(server, str) else server.url
        made.append(recording_client(ledger, base, token, **options))
        return made[-1]

    yield make
    for each in made:
        each.close()
