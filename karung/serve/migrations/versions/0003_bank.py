"""hash bank: the hash version of each entry (``bank_entries.hash_version``)

Version 1 is PDQ of the whole image (ThreatExchange's reference, and every entry banked before
this revision); version 2 is PDQ of the 64 x 64 normalised image with one stored centre crop
(``karung.vision.hashing.HASH_VERSION``). The matcher never compares hashes of different
versions; ``karung bank rehash`` moves entries to version 2 from the original photos.

Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_bank"
down_revision = "0002_bank"


def upgrade() -> None:
    # Existing rows were hashed with version 1: the server default labels them so. A plain
    # ADD COLUMN (no batch copy): recreating the SQLite table would drop its AUTOINCREMENT.
    op.add_column(
        "bank_entries",
        sa.Column("hash_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("hash_version")
