"""review: login throttle in the database (shared by every worker and replica)

Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_review"
down_revision = "0002_review"


def upgrade() -> None:
    op.create_table(
        "review_login_throttle",
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_review_login_throttle_updated", "review_login_throttle", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_review_login_throttle_updated", "review_login_throttle")
    op.drop_table("review_login_throttle")
