"""service: api_keys

Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_service"
down_revision = None
branch_labels = ("service",)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("key_id", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(256), nullable=False),
        sa.Column("block_threshold", sa.Float),
        sa.Column("review_threshold", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
