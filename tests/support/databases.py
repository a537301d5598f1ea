"""Database URL helpers shared by fixtures and tests."""

from __future__ import annotations

from pathlib import Path

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
