"""review queue: review_items

Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_review"
down_revision = None
branch_labels = ("review",)


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("listing_id", sa.String(256)),
        sa.Column("seller_id", sa.String(256)),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("risk", sa.Float, nullable=False),
        sa.Column("model_decision", sa.String(16), nullable=False),
        sa.Column("matches", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("threshold_distance", sa.Float, nullable=False),
        sa.Column("cluster_size", sa.Integer, nullable=False),
        sa.Column("thumbnail", sa.LargeBinary, nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_review_items_sha256", "review_items", ["sha256"])
    op.create_index("ix_review_items_seller_id", "review_items", ["seller_id"])
    op.create_index("ix_review_items_queue", "review_items", ["status", "threshold_distance"])


def downgrade() -> None:
    op.drop_table("review_items")
