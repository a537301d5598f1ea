"""Alembic environment: runs online against the engine the caller passes in.

On PostgreSQL an advisory lock is held while migrating, so several instances starting at
once upgrade the schema one after another instead of racing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from apitokens.storage.sql.schema import Base

MIGRATION_LOCK = 727_274_001


def run() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if postgres:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                connection.commit()


run()
