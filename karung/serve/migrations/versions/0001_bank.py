"""hash bank: banks, entries, version state, change log, match events

Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_bank"
down_revision = None
branch_labels = ("bank",)


def upgrade() -> None:
    _banks_and_entries()
    _state_and_changes()
    _match_events()


def _banks_and_entries() -> None:
    op.create_table(
        "bank_banks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("pdq_threshold", sa.Integer, nullable=False),
        sa.Column("phash_threshold", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(512)),
    )
    op.create_table(
        "bank_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "bank",
            sa.String(64),
            sa.ForeignKey("bank_banks.name", name="fk_bank_entries_bank"),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(64)),
        sa.Column("pdq", sa.String(64)),
        sa.Column("pdq_quality", sa.Integer),
        sa.Column("phash", sa.String(16)),
        sa.Column("trim_pdq", sa.String(64)),
        sa.Column("trim_pdq_quality", sa.Integer),
        sa.Column("trim_phash", sa.String(16)),
        sa.Column("listing_id", sa.String(256)),
        sa.Column("seller_id", sa.String(256)),
        sa.Column("source_url", sa.String(2048)),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(128)),
        sa.Column("note", sa.String(1024)),
        sa.UniqueConstraint("bank", "sha256", name="uq_bank_entries_bank_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_entries_seller_id", "bank_entries", ["seller_id"])
    op.create_index("ix_bank_entries_sha256", "bank_entries", ["sha256"])


def _state_and_changes() -> None:
    op.create_table(
        "bank_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("bank_state", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger)),
        [{"id": 1, "version": 0}],
    )
    op.create_table(
        "bank_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("bank", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.Integer),
    )
    op.create_index("ix_bank_changes_version", "bank_changes", ["version"])


def _match_events() -> None:
    op.create_table(
        "bank_match_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("query_sha256", sa.String(64), nullable=False),
        sa.Column("seller_id", sa.String(256)),
        sa.Column("listing_id", sa.String(256)),
        sa.Column("entry_id", sa.Integer, nullable=False),
        sa.Column("bank", sa.String(64), nullable=False),
        sa.Column("entry_seller_id", sa.String(256)),
        sa.Column("entry_listing_id", sa.String(256)),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("distance", sa.Integer, nullable=False),
    )
    op.create_index("ix_bank_match_events_seller_id", "bank_match_events", ["seller_id"])
    op.create_index(
        "ix_bank_match_events_entry_seller_id", "bank_match_events", ["entry_seller_id"]
    )


def downgrade() -> None:
    op.drop_table("bank_match_events")
    op.drop_table("bank_changes")
    op.drop_table("bank_state")
    op.drop_table("bank_entries")
    op.drop_table("bank_banks")
