"""ORM models of the hash bank (migration branch ``bank``, ``0001_bank``).

Hashes are stored as lower-case hex strings (identical in SQLite and PostgreSQL, readable in a
SQL shell, and the same text the CSV exchange format uses).

* ``bank_banks``: named banks with an ``enabled`` flag and per-bank match thresholds.
* ``bank_entries``: one known-bad photo: its sha256, PDQ (+ quality) and pHash, and the same
  hashes of its border-trimmed content when trimming changed the image (``trim_*``), and the
  PDQ + pHash of crops of the image (``crop_hashes``, revision ``0002_bank``) and the hash
  version they were computed with (``hash_version``, revision ``0003_bank``).
* ``bank_state``: one row whose ``version`` is bumped in every writing transaction, so replicas
  poll a single integer; the row lock also orders concurrent writers.
* ``bank_changes``: what each version changed (entry added/removed, bank settings), so a replica
  can apply the delta instead of reloading everything.
* ``bank_match_events``: a query image (from a seller/listing) that matched an entry; the
  evidence that links seller accounts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from karung.serve.db import Base
from karung.vision.hash_kinds import PDQ, PHASH

DEFAULT_PDQ_THRESHOLD = PDQ.default_threshold
DEFAULT_PHASH_THRESHOLD = PHASH.default_threshold
STATE_ROW_ID = 1


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class BankRow(Base):
    """A named bank of entries."""

    __tablename__ = "bank_banks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    pdq_threshold: Mapped[int] = mapped_column(Integer, default=DEFAULT_PDQ_THRESHOLD)
    phash_threshold: Mapped[int] = mapped_column(Integer, default=DEFAULT_PHASH_THRESHOLD)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    description: Mapped[str | None] = mapped_column(String(512))


class EntryRow(Base):
    """One known-bad photo, identified by its hashes (the image itself is never stored)."""

    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("bank", "sha256", name="uq_bank_entries_bank_sha256"),
        Index("ix_bank_entries_seller_id", "seller_id"),
        Index("ix_bank_entries_sha256", "sha256"),
        # Never reuse the id of a removed entry: match events and replicas refer to ids.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank: Mapped[str] = mapped_column(
        String(64), ForeignKey("bank_banks.name", name="fk_bank_entries_bank")
    )
    sha256: Mapped[str | None] = mapped_column(String(64))
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    phash: Mapped[str | None] = mapped_column(String(16))
    trim_pdq: Mapped[str | None] = mapped_column(String(64))
    trim_pdq_quality: Mapped[int | None] = mapped_column(Integer)
    trim_phash: Mapped[str | None] = mapped_column(String(16))
    # Crop variants (migration 0002_bank): ``<pdq hex>:<phash hex>`` per crop, space-separated
    # (karung.vision.crops.encode_crops); NULL for entries without any.
    crop_hashes: Mapped[str | None] = mapped_column(Text)
    # Hash version (migration 0003_bank): 1 reference PDQ (and rows from before), 2 normalised
    # PDQ (karung.vision.hashing.HASH_VERSION); hashes of different versions are never compared.
    hash_version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    listing_id: Mapped[str | None] = mapped_column(String(256))
    seller_id: Mapped[str | None] = mapped_column(String(256))
    source_url: Mapped[str | None] = mapped_column(String(2048))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    added_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(String(1024))


class StateRow(Base):
    """The single row holding the bank's change counter."""

    __tablename__ = "bank_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeRow(Base):
    """One change made at ``version``: ``op`` is ``add``, ``remove`` or ``bank``."""

    __tablename__ = "bank_changes"
    __table_args__ = (Index("ix_bank_changes_version", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(16))
    bank: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[int | None] = mapped_column(Integer)


class MatchEventRow(Base):
    """A query image from ``seller_id`` matched entry ``entry_id`` (of ``entry_seller_id``)."""

    __tablename__ = "bank_match_events"
    __table_args__ = (
        Index("ix_bank_match_events_seller_id", "seller_id"),
        Index("ix_bank_match_events_entry_seller_id", "entry_seller_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    query_sha256: Mapped[str] = mapped_column(String(64))
    seller_id: Mapped[str | None] = mapped_column(String(256))
    listing_id: Mapped[str | None] = mapped_column(String(256))
    # No foreign key: the evidence outlives the entry when a moderator removes it.
    entry_id: Mapped[int] = mapped_column(Integer)
    bank: Mapped[str] = mapped_column(String(64))
    entry_seller_id: Mapped[str | None] = mapped_column(String(256))
    entry_listing_id: Mapped[str | None] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(8))
    distance: Mapped[int] = mapped_column(Integer)
