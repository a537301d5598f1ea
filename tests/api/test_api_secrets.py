"""Token values cross the boundary once: never in the server log, never in the database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_support import MANAGER, READ, TOKENS, body, create
from sqlalchemy import create_engine, inspect, text

from apitokens.domain.values import ValueCodec
from support.databases import backend_of, sqlite_path
from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory

pytestmark = pytest.mark.app_backends("memory", "sqlite", "postgresql")


@pytest.fixture
def server(app_factory: AppFactory) -> InProcessServer:
    """An app that tells everything it logs: debug level, access log on."""
    return app_factory(env={"APITOKENS_LOG_LEVEL": "debug"})


def _exercise(server: InProcessServer, api: ApiClientFactory) -> list[str]:
    """Create, use, rotate, misuse and delete tokens; return every value the tests saw."""
    admin = api(server, server.admin)
    seen = [server.admin]
    manager = create(admin, "manager", MANAGER, allowedCIDRBlocks=["127.0.0.1"])
    reader = create(admin, "reader", [READ])
    seen += [manager["value"], reader["value"]]
    as_manager = api(server, manager["value"])
    child = create(as_manager, "child", [READ], allowedCIDRBlocks=["127.0.0.1"])  # no wider
    seen.append(child["value"])
    rotated = as_manager.post(f"{TOKENS}/{child['id']}/rotate").json()
    graceful = admin.post(f"{TOKENS}/{reader['id']}/rotate", params={"gracePeriodSeconds": 60})
    seen += [rotated["value"], graceful.json()["value"]]
    own = api(server, rotated["value"]).post(f"{TOKENS}/self/rotate").json()
    seen.append(own["value"])
    _misuse(server, api, admin, seen)
    as_manager.post(f"{TOKENS}/{reader['id']}", json=body("reader", []))
    as_manager.delete(f"{TOKENS}/{child['id']}")
    api(server, own["value"]).get(TOKENS)  # revoked
    unknown = ValueCodec("apitk").issue().value
    seen.append(unknown)
    api(server, unknown).get(TOKENS)
    return seen


def _misuse(
    server: InProcessServer, api: ApiClientFactory, admin: httpx.Client, seen: list[str]
) -> None:
    """Requests that carry values where they do not belong, and refused ones."""
    for value in seen:
        api(server, value).get(f"{TOKENS}/self")
        api(server, value[:-1]).get(TOKENS)  # malformed
        admin.get(f"{TOKENS}/{value}")
        admin.get(TOKENS, params={"cursor": value})
        admin.post(TOKENS, json=body("x", [value]))
        admin.post(TOKENS, json=body("x", allowedCIDRBlocks=[value]))
        admin.post(TOKENS, json={"name": "x", "permissions": [], value: 1})
        api(server, value).get(f"/no-such-route/{value}")


def _secret_parts(values: list[str]) -> Iterator[str]:
    for value in values:
        yield value
        yield value.split("_", 1)[1]  # the random part alone


def _database_text(server: InProcessServer) -> bytes:
    """Everything the store holds: its data's repr for the in-memory store, raw file bytes
    for SQLite, every row for PostgreSQL."""
    if server.backend == "memory":
        return repr(vars(server.store)).encode()
    database_url = server.database_url
    if backend_of(database_url) == "sqlite":
        path = sqlite_path(database_url)
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            rows = [
                str(row).encode()
                for table in tables
                for row in connection.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
            ]
    finally:
        engine.dispose()
    return b"\n".join(rows)


def test_no_value_reaches_the_log(server: InProcessServer, api: ApiClientFactory) -> None:
    values = _exercise(server, api)
    server.stop()
    log = server.log_text()
    assert "authentication refused" in log  # the log did record the refusals
    leaked = [part for part in _secret_parts(values) if part in log]
    assert leaked == []


def test_no_value_reaches_the_database(server: InProcessServer, api: ApiClientFactory) -> None:
    values = _exercise(server, api)
    while_running = _database_text(server)
    server.stop()
    stored = while_running + _database_text(server)
    assert b"manager" in stored  # the dump did see the tokens
    leaked = [part for part in _secret_parts(values) if part.encode() in stored]
    assert leaked == []
