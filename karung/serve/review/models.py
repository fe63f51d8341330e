"""ORM models of the review area (migration branch ``review``).

Tables: the queue (``review_items``), moderators and their login sessions, every moderator
decision, the append-only audit log and the webhook outbox. All timestamps are timezone-aware UTC
(:class:`UTCDateTime`), on SQLite as well as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from karung.serve.db import Base


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the stores use."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite has no timezone type: SQLAlchemy stores the wall-clock text and hands back naive
    datetimes, which then cannot be compared with :func:`utcnow`. Normalising here keeps every
    caller (and every comparison in SQL, done on UTC text) correct on both backends.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ReviewItem(Base):
    """One image waiting for (or decided by) a moderator."""

    __tablename__ = "review_items"
    __table_args__ = (
        Index("ix_review_items_queue", "status", "threshold_distance"),
        Index("ix_review_items_priority", "status", "priority_bucket", "cluster_size"),
        Index("ix_review_items_decided_at", "decided_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|claimed|decided
    reason: Mapped[str] = mapped_column(String(32))  # review_band | qc_allow | qc_block
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str | None] = mapped_column(String(2048))
    listing_id: Mapped[str | None] = mapped_column(String(256))
    seller_id: Mapped[str | None] = mapped_column(String(256), index=True)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    risk: Mapped[float] = mapped_column(Float)
    model_decision: Mapped[str] = mapped_column(String(16))
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(128))
    # Priority: closest to the block threshold first, then larger seller clusters first.
    threshold_distance: Mapped[float] = mapped_column(Float)
    # floor(threshold_distance / 0.05): items within the same band are ordered by cluster size.
    priority_bucket: Mapped[int] = mapped_column(Integer, default=0)
    cluster_size: Mapped[int] = mapped_column(Integer, default=1)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the first decision: whether a second, independent moderator must also decide.
    double_review: Mapped[bool] = mapped_column(Boolean, default=False)
    reviews_required: Mapped[int] = mapped_column(Integer, default=1)
    final_label: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the decision did to the bank (entry ids), so an undo can take it back.
    bank_refs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Moderator(Base):
    """A person allowed into ``/review`` (separate from the platform's API keys)."""

    __tablename__ = "review_moderators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModeratorSession(Base):
    """A login: the cookie carries a random token, the table only its SHA-256."""

    __tablename__ = "review_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    moderator_id: Mapped[int] = mapped_column(ForeignKey("review_moderators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReviewDecision(Base):
    """One moderator's answer on one item (a label or a skip); undo marks it, never deletes it."""

    __tablename__ = "review_decisions"
    __table_args__ = (
        Index("ix_review_decisions_item", "item_id", "undone_at"),
        Index("ix_review_decisions_moderator", "moderator", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"))
    moderator: Mapped[str] = mapped_column(String(128))
    # 1 = first review, 2 = independent second review, 3 = adjudication; 0 = skip.
    round: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(16))  # bale|sack|garment|other|skip
    reason_code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One line of the audit log. Database triggers reject UPDATE and DELETE on this table."""

    __tablename__ = "review_audit"
    __table_args__ = (Index("ix_review_audit_item", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    # No foreign key on purpose: the log must outlive any retention clean-up of the queue.
    item_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxMessage(Base):
    """A webhook event written in the decision's transaction and delivered by the worker."""

    __tablename__ = "review_outbox"
    __table_args__ = (Index("ix_review_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class LoginThrottleRow(Base):
    """Failed-login counts and the backoff they earned, per (address, account) and per address
    (see :mod:`karung.serve.review.throttle`); times are Unix seconds."""

    __tablename__ = "review_login_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
