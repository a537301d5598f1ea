"""The change feed: one row per committed change, so instances drop only what changed.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from apitokens.storage.sql.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_changes",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_token_changes")),
    )


def downgrade() -> None:
    op.drop_table("token_changes")
