"""review: moderators, sessions, decisions, append-only audit log, webhook outbox

Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_review"
down_revision = "0001_review"

TZ = sa.DateTime(timezone=True)

# The audit log is append-only: the database itself refuses to change or remove a line, so neither
# a bug nor a hand-typed UPDATE can rewrite history.
SQLITE_TRIGGERS = (
    """CREATE TRIGGER review_audit_no_update BEFORE UPDATE ON review_audit
    BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END""",
    """CREATE TRIGGER review_audit_no_delete BEFORE DELETE ON review_audit
    BEGIN SELECT RAISE(ABORT, 'review_audit is append-only'); END""",
)
PG_TRIGGERS = (
    """CREATE FUNCTION review_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'review_audit is append-only' USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER review_audit_no_change BEFORE UPDATE OR DELETE ON review_audit
    FOR EACH ROW EXECUTE FUNCTION review_audit_append_only()""",
    """CREATE TRIGGER review_audit_no_truncate BEFORE TRUNCATE ON review_audit
    FOR EACH STATEMENT EXECUTE FUNCTION review_audit_append_only()""",
)


def upgrade() -> None:
    _extend_items()
    _accounts()
    _decisions_and_audit()
    _outbox()
    dialect = op.get_bind().dialect.name
    for ddl in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(ddl)


def _extend_items() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(
            sa.Column("priority_bucket", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("double_review", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("reviews_required", sa.Integer, nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("final_label", sa.String(16)))
        batch.add_column(sa.Column("decided_at", TZ))
        batch.add_column(sa.Column("bank_refs", sa.JSON))
    op.execute("UPDATE review_items SET priority_bucket = CAST(threshold_distance * 20 AS INTEGER)")
    op.create_index(
        "ix_review_items_priority", "review_items", ["status", "priority_bucket", "cluster_size"]
    )
    op.create_index("ix_review_items_decided_at", "review_items", ["decided_at"])


def _accounts() -> None:
    op.create_table(
        "review_moderators",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(512), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("disabled_at", TZ),
    )
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "moderator_id", sa.Integer, sa.ForeignKey("review_moderators.id"), nullable=False
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
    )
    op.create_index("ix_review_sessions_moderator_id", "review_sessions", ["moderator_id"])


def _decisions_and_audit() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("moderator", sa.String(128), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("undone_at", TZ),
    )
    op.create_index("ix_review_decisions_item", "review_decisions", ["item_id", "undone_at"])
    op.create_index(
        "ix_review_decisions_moderator", "review_decisions", ["moderator", "created_at"]
    )
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("item_id", sa.Integer),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_review_audit_at", "review_audit", ["at"])
    op.create_index("ix_review_audit_item", "review_audit", ["item_id"])


def _outbox() -> None:
    op.create_table(
        "review_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("item_id", sa.Integer),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("locked_until", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_review_outbox_due", "review_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE review_audit")
        op.execute("DROP FUNCTION review_audit_append_only()")
    else:
        op.drop_table("review_audit")
    for table in ("review_outbox", "review_decisions", "review_sessions", "review_moderators"):
        op.drop_table(table)
    op.drop_index("ix_review_items_decided_at", "review_items")
    op.drop_index("ix_review_items_priority", "review_items")
    with op.batch_alter_table("review_items") as batch:
        for column in (
            "bank_refs",
            "decided_at",
            "final_label",
            "reviews_required",
            "double_review",
            "priority_bucket",
        ):
            batch.drop_column(column)
