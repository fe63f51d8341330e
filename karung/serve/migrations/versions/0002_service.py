"""service: model_swaps (hot model swaps, followed by every replica)

Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_service"
down_revision = "0001_service"


def upgrade() -> None:
    op.create_table(
        "model_swaps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_swaps")
