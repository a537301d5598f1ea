"""Database URL helpers shared by fixtures and tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SQLITE_PREFIX = "sqlite:///"


def sqlite_url(path: Path) -> str:
    """SQLAlchemy URL of the SQLite file at *path* (made absolute)."""
    return f"{SQLITE_PREFIX}{path.resolve()}"


def sqlite_path(url: str) -> Path:
    """The file behind a ``sqlite:///<path>`` URL."""
    if not url.startswith(SQLITE_PREFIX):
        raise ValueError(f"not a SQLite file URL: {url!r}")
    return Path(url.removeprefix(SQLITE_PREFIX).split("?", 1)[0])


def backend_of(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a database URL."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in {"sqlite", "postgresql"}:
        raise ValueError(f"unsupported database URL: {url!r}")
    return scheme


def database_name(url: str) -> str:
    """The database name at the end of a PostgreSQL URL."""
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def backend_params(extra: tuple[str, ...] = ()) -> list[object]:
    """pytest params for ``extra`` (e.g. ``("memory",)``) and the database backends of
    ``APITOKENS_TEST_BACKENDS`` (default: sqlite and postgresql; the PostgreSQL case carries
    the ``postgres`` marker)."""
    import pytest

    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    names = [part.strip() for part in raw.split(",") if part.strip()] or ["sqlite", "postgresql"]
    chosen = [*extra, *(name for name in dict.fromkeys(names) if name in ("sqlite", "postgresql"))]
    return [
        pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
        for name in chosen
    ]


@contextlib.contextmanager
def migrated_database(backend: str, request: Any, directory: Path) -> Iterator[str]:
    """An empty database of ``backend`` (``"sqlite"``, ``"postgresql"``) at the newest schema,
    for one test: a copy of the session's ``migrated_sqlite_template`` in ``directory``, or
    a database of ``reused_postgres_databases`` (emptied, given back at the end).
    ``request`` is the test's ``pytest.FixtureRequest``."""
    if backend == "sqlite":
        path = directory / "apitokens-migrated.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        yield sqlite_url(path)
        return
    cluster = request.getfixturevalue("pg_cluster")
    cluster.start()  # no-op unless an outage test left it stopped
    databases = request.getfixturevalue("reused_postgres_databases")
    name = databases.acquire()
    try:
        yield cluster.url_for(name)
    finally:
        databases.release(name)
