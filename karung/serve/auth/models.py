"""ORM model of API keys (migration branch ``service``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from karung.serve.db import Base


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class ApiKey(Base):
    """One client's key: a name, the SHA-256 of the secret, scopes and threshold overrides."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # the clear part after krg_
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(256))
    block_threshold: Mapped[float | None] = mapped_column(Float)
    review_threshold: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
