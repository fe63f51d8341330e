"""hash bank: crop variants of each entry (``bank_entries.crop_hashes``)

Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_bank"
down_revision = "0001_bank"


def upgrade() -> None:
    # Entries banked before this revision have no crop variants (NULL): they still match by
    # their plain and trimmed hashes.
    with op.batch_alter_table("bank_entries") as batch:
        batch.add_column(sa.Column("crop_hashes", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("crop_hashes")
