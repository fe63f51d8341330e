"""hash bank: crop variants of each entry (``bank_entries.crop_hashes``)

Revision ID: 0002_bank
Revises: 0001_bank
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_bank"
down_revision = "0001_bank"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries banked before this revision have no crop variants (NULL): they still match by
    # their plain and trimmed hashes.
    with op.batch_alter_table("bank_entries") as batch:
        batch.add_column(sa.Column("crop_hashes", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("crop_hashes")
