"""ORM model of the review queue (migration branch ``review``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from karung.serve.db import Base


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the stores use."""
    return datetime.now(UTC)


class ReviewItem(Base):
    """One image waiting for (or decided by) a moderator."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_queue", "status", "threshold_distance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
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
    cluster_size: Mapped[int] = mapped_column(Integer, default=1)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
