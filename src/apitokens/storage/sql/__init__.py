"""The SQL store: SQLite (embedded, default) and PostgreSQL, one portable schema."""

from apitokens.storage.sql.store import SqlStore

__all__ = ["SqlStore"]
