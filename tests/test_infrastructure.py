"""Tests of the test infrastructure itself: ports, server processes, PostgreSQL, fixtures.

``ServerProcess`` is checked against ``support/fake_server.py`` so that its start, stop,
restart, failure and cleanup behaviour is known to work independently of the service; the
last tests start the real ``apitokens serve``.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.databases import backend_of, database_name, sqlite_path
from support.postgres import PostgresCluster, ReusedDatabases, require_postgres
from support.processes import (
    CLEAN_EXIT_STATUSES,
    BootstrapError,
    RunningServer,
    ServerProcess,
    ServerStartError,
    free_port,
)
from support.protocols import ApiClientFactory, BootstrapToken, ServerFactory

SUPPORT_DIR = Path(__file__).parent / "support"
TESTS_DIR = Path(__file__).parent


def _alive(pid: int) -> bool:
    """True if *pid* is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


@pytest.fixture
def fake_executable(tmp_path: Path) -> Path:
    """An executable that behaves like ``apitokens serve`` (see support/fake_server.py)."""
    script = tmp_path / "fake-apitokens"
    fake = SUPPORT_DIR / "fake_server.py"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n')
    script.chmod(0o755)
    return script


@pytest.fixture
def fake_server(fake_executable: Path, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``fake_server(**ServerProcess keywords)``: a not yet started fake server."""
    made: list[ServerProcess] = []

    def make(**kwargs: Any) -> ServerProcess:
        process = ServerProcess(
            "sqlite:///unused.db", executable=fake_executable, log_dir=tmp_path, **kwargs
        )
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()


# -- ports --------------------------------------------------------------------------------


def test_free_port_can_be_bound_and_listened_on() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert sock.getsockname() == ("127.0.0.1", port)


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < 65536 for port in ports)


# -- ServerProcess, against the fake server -----------------------------------------------


def test_server_process_starts_answers_and_stops_cleanly(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server(args=["--trusted-proxies", "10.0.0.0/8"]).start()
    pid = process.pid
    assert process.url == f"http://127.0.0.1:{process.port}"
    assert process.is_running() and _alive(pid)
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200
    assert process.stop() == 0
    assert not process.needed_sigkill
    assert not process.is_running() and not _alive(pid)
    log = process.log_text()
    assert "--database-url', 'sqlite:///unused.db'" in log
    assert "extra=['--trusted-proxies', '10.0.0.0/8']" in log
    assert "clean shutdown" in log
    assert process.stop() == 0, "stopping a stopped server returns its last status"


def _proc_status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_forked_server_is_set_up_as_an_exec_of_the_executable_would_be(
    server_factory: ServerFactory, sqlite_database_url: str
) -> None:
    """The fork server's servers: own session, the test's working directory and open-file
    limit, SIGPIPE ignored (a write to a closed connection raises instead of killing the
    server, as in a new interpreter), the environment asked for, output in the log."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1000, hard), hard))
    try:
        server = server_factory(sqlite_database_url, env={"APITOKENS_LOG_FORMAT": "console"})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pid = server.pid
    assert os.getpgid(pid) == os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/cwd") == os.getcwd()
    assert int(_proc_status(pid, "SigIgn"), 16) & (1 << (signal.SIGPIPE - 1))
    assert not int(_proc_status(pid, "SigIgn"), 16) & (1 << (signal.SIGTERM - 1))
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert f"Max open files            {hard}" in limits  # serve raised its soft limit
    log = server.log_text()  # the environment asked for: lines for a person, not JSON
    assert "ready" in log and '"level"' not in log
    assert server.stop() in CLEAN_EXIT_STATUSES


def test_restart_keeps_the_port_and_appends_to_the_log(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server().start()
    port, first_pid = process.port, process.pid
    process.restart()
    assert process.port == port and process.pid != first_pid
    assert not _alive(first_pid)
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200
    assert process.log_text().count("fake server listening") == 2
    process.stop()
    process.start()
    assert process.port == port and process.log_text().count("fake server listening") == 3


def test_kill_uses_sigkill(fake_server: Callable[..., ServerProcess]) -> None:
    process = fake_server().start()
    assert process.kill() == -signal.SIGKILL
    assert not process.is_running()


def test_a_server_that_exits_at_start_raises_with_its_log(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server(env={"FAKE_EXIT_AT_START": "3"})
    with pytest.raises(ServerStartError, match="status 3") as caught:
        process.start()
    assert "exiting at start as asked" in str(caught.value)
    assert not process.is_running()


def test_a_server_not_ready_in_time_raises_and_is_killed(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server(env={"FAKE_READY_AFTER": "30"}, startup_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="did not answer 200"):
        process.start()
    assert time.monotonic() - started < 10
    assert not process.is_running() and not _alive(process.pid)


def test_a_slow_server_is_waited_for(fake_server: Callable[..., ServerProcess]) -> None:
    process = fake_server(env={"FAKE_READY_AFTER": "1"}).start()
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200


def test_stop_falls_back_to_sigkill_when_sigterm_is_ignored(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server(env={"FAKE_IGNORE_SIGTERM": "1"}).start()
    assert process.stop(timeout=0.5) == -signal.SIGKILL
    assert process.needed_sigkill
    assert "ignoring SIGTERM" in process.log_text()


def test_a_port_clash_at_first_start_moves_to_another_port(
    fake_server: Callable[..., ServerProcess],
) -> None:
    process = fake_server()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", process.port))
        squatter.listen()
        taken = process.port
        process.start()
    assert process.port != taken
    assert httpx.get(f"{process.url}/healthz", timeout=5).status_code == 200


def test_the_environment_is_isolated_from_apitokens_variables(
    fake_server: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APITOKENS_LOG_LEVEL", "debug")
    monkeypatch.setenv("APITOKENS_DATABASE_URL", "sqlite:///leaked.db")
    process = fake_server(env={"APITOKENS_TOKEN_PREFIX": "abc"}).start()
    assert "env=['APITOKENS_TOKEN_PREFIX']" in process.log_text()


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from support.processes import ServerProcess
    process = ServerProcess({url!r}, {executable}log_dir=Path({logs!r})).start()
    print(process.pid, flush=True)
    sys.stdin.readline()  # exit (leaving the server running) when told to
    """
)


@pytest.mark.parametrize("how", ["normal-exit", "sigkill"])
@pytest.mark.parametrize("started", ["exec", "forked"])
def test_no_server_outlives_the_test_process(
    fake_executable: Path, tmp_path: Path, how: str, started: str
) -> None:
    """atexit kills servers left running; a SIGKILLed parent takes them down too, whether
    the server was an exec of an executable or forked from the fork server (the real
    ``apitokens serve``)."""
    script = _ORPHAN_SCRIPT.format(
        tests=str(TESTS_DIR),
        url=f"sqlite:///{tmp_path / 'orphan.db'}",
        executable=f"executable=Path({str(fake_executable)!r}), " if started == "exec" else "",
        logs=str(tmp_path),
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None and parent.stdin is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        if how == "sigkill":
            parent.kill()
        else:
            parent.stdin.write("exit\n")
            parent.stdin.flush()
        assert parent.wait(timeout=30) == (-signal.SIGKILL if how == "sigkill" else 0)
    assert _wait_dead(server_pid), f"server {server_pid} outlived its parent ({how})"


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_cluster_starts_stops_and_starts_again() -> None:
    require_postgres()
    import psycopg

    cluster = PostgresCluster().start()
    root = cluster.root
    try:
        with cluster.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW max_connections").fetchone() == ("200",)
            assert conn.execute("SHOW fsync").fetchone() == ("on" if cluster.fsync else "off",)
        url = cluster.create_database("lifecycle")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/lifecycle"
        with cluster.connect("lifecycle") as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")

        port = cluster.port
        cluster.stop()
        assert not cluster.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.conninfo(), connect_timeout=3)

        cluster.start()
        assert cluster.port == port and cluster.is_running()
        with cluster.connect("lifecycle") as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
        cluster.drop_database("lifecycle")
        with cluster.connect() as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert "lifecycle" not in names
    finally:
        cluster.close()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.conninfo(), connect_timeout=3)


@pytest.mark.postgres
def test_session_cluster_gives_distinct_databases(pg_cluster: PostgresCluster) -> None:
    first, second = pg_cluster.create_database(), pg_cluster.create_database()
    assert first != second
    for url in (first, second):
        with pg_cluster.connect(database_name(url)) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database_name(url),)
        pg_cluster.drop_database(database_name(url))


@pytest.mark.postgres
def test_a_reused_postgres_database_comes_back_empty_and_a_busy_one_is_not_reused(
    pg_cluster: PostgresCluster, migrated_postgres_template: str
) -> None:
    databases = ReusedDatabases(pg_cluster, migrated_postgres_template)
    first = databases.acquire()
    with pg_cluster.connect(first) as conn:
        conn.execute(
            "INSERT INTO audit_events (action, token_id, actor_id, actor_type, client_ip, at, "
            "detail) VALUES ('x', NULL, NULL, NULL, NULL, now(), '{}')"
        )
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    databases.release(first)
    again = databases.acquire()
    assert again != first  # renamed: a connection left to the old name finds nothing
    with pg_cluster.connect(again) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (0,)
        conn.execute(
            "INSERT INTO audit_events (action, token_id, actor_id, actor_type, client_ip, at, "
            "detail) VALUES ('x', NULL, NULL, NULL, NULL, now(), '{}')"
        )
        assert conn.execute("SELECT id FROM audit_events").fetchone() == (1,)  # restarted
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == revision
    still_open = pg_cluster.connect(again)
    databases.release(again)
    third = databases.acquire()  # the open session keeps `again` from being handed out
    still_open.close()  # (dropped with FORCE once the next copy is made)
    assert third != again
    with pg_cluster.connect(third) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (0,)
    databases.release(third)


def test_database_url_is_a_fresh_empty_database(
    backend: str, database_url: str, request: pytest.FixtureRequest
) -> None:
    assert backend_of(database_url) == backend
    if backend == "sqlite":
        path = sqlite_path(database_url)
        assert path.parent.is_dir() and not path.exists()
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    with cluster.connect(database_name(database_url)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_sqlite_database_url_is_sqlite(sqlite_database_url: str) -> None:
    assert backend_of(sqlite_database_url) == "sqlite"
    assert not sqlite_path(sqlite_database_url).exists()


# -- the real service ---------------------------------------------------------------------


def test_server_answers_and_its_bootstrapped_admin_token_authenticates(
    server: RunningServer, api: ApiClientFactory
) -> None:
    assert api(server).get("/healthz").status_code == 200
    assert api(server, server.admin).get("/api-tokens/self").status_code == 200
    assert api(server).get("/api-tokens/self").status_code == 401


def test_server_restarts_on_the_same_port(
    server_factory: ServerFactory, database_url: str, api: ApiClientFactory
) -> None:
    server = server_factory(database_url)
    client = api(server, server.admin)
    assert client.get("/api-tokens").status_code == 200
    server.restart()
    assert client.get("/api-tokens").status_code == 200
    assert _alive(server.pid)


def test_bootstrap_prints_a_distinct_value_each_time(
    bootstrap_token: BootstrapToken, database_url: str
) -> None:
    first = bootstrap_token(database_url)
    with pytest.raises(BootstrapError, match="exited with 4"):
        bootstrap_token(database_url, name="ci")  # a bootstrap token exists: refused
    second = bootstrap_token(database_url, name="ci", force=True)
    assert first != second
    assert os.linesep not in first
