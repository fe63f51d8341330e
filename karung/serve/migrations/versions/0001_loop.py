"""loop: model_retrain_jobs (admin retrains) and risk_daily (drift of the risk distribution)

Revision ID: 0001_loop
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_loop"
down_revision = None
branch_labels = ("loop",)
depends_on = None

BINS = 20


def upgrade() -> None:
    op.create_table(
        "model_retrain_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("force", sa.Boolean, nullable=False),
        sa.Column("out", sa.String(1024), nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "risk_daily",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("model_version", sa.String(128), primary_key=True),
        sa.Column("scored", sa.Integer, nullable=False),
        sa.Column("review_band", sa.Integer, nullable=False),
        sa.Column("blocked", sa.Integer, nullable=False),
        *(sa.Column(f"b{i:02d}", sa.Integer, nullable=False) for i in range(BINS)),
    )


def downgrade() -> None:
    op.drop_table("risk_daily")
    op.drop_table("model_retrain_jobs")
