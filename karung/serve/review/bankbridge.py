"""The review loop's bridge to the hash bank (same database, ``karung.serve.bank``).

Confirmed bales and sacks are added through the bank store's ``add_in`` inside the decision's own
transaction, so a decision and its bank entry commit (or roll back) together; undo removes exactly
the entries the decision created with ``remove_in``. The bank keeps hashes, never images: the
image shown beside a match is the review queue's stored copy of the photo that was confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from karung.serve.review.effects import BankWriter
from karung.serve.review.models import ReviewItem
from karung.serve.verdict import Match
from karung.vision.labels import RISK_LABELS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreBankWriter:
    """:class:`BankWriter` over a bank store with ``add_in`` / ``remove_in``."""

    store: Any

    def add_confirmed(
        self,
        session: Session,
        image: Image.Image,
        *,
        bank: str,
        sha256: str,
        listing_id: str | None,
        seller_id: str | None,
        note: str,
    ) -> Sequence[int]:
        """Hash ``image`` and add it; return only the ids of entries this call created."""
        from karung.serve.bank.store import NewEntry

        # from_image also stores the crop variants, so a cropped re-upload is caught too.
        entry = NewEntry.from_image(
            bank,
            sha256,
            image,
            listing_id=listing_id,
            seller_id=seller_id,
            added_by="review",
            note=note,
        )
        # An entry that was already there is not ours: an undo must leave it alone.
        return [r.entry.id for r in self.store.add_in(session, [entry]) if r.created]

    def remove_entries(self, session: Session, bank: str, entry_ids: Sequence[int]) -> int:
        """Remove the given entries of ``bank``."""
        return int(self.store.remove_in(session, list(entry_ids), bank))


def bank_writer(bank: Any, engine: Engine | None) -> BankWriter | None:
    """A writer on the service bank's store, else on a store over ``engine``, else None.

    The store says which entries a call created, and undo must only ever remove those.
    """
    for candidate in (getattr(bank, "store", None), bank):
        if callable(getattr(candidate, "add_in", None)) and callable(
            getattr(candidate, "remove_in", None)
        ):
            return StoreBankWriter(candidate)
    if engine is None:
        return None
    try:
        from karung.serve.bank.store import BankStore
    except ImportError:  # a build without the bank area: decisions still work
        return None
    return StoreBankWriter(BankStore(engine))


def refresh(bank: Any) -> None:
    """Make entries committed just now visible to this replica's matcher at once."""
    fn = getattr(bank, "refresh_if_changed", None)
    if callable(fn):
        try:
            fn()
        except Exception:  # the periodic poller catches up
            log.exception("bank refresh after a review decision failed")


def match_image(session: Session, match: Match, engine: Engine | None) -> bytes | None:
    """The stored copy of the confirmed photo behind a bank match, when review confirmed it
    (the entry's sha256 is looked up in the bank: a match names the entry, not its hash)."""
    sha = _entry_sha256(engine, match.entry_id) if engine is not None else None
    if not sha:
        return None
    thumb = session.scalar(
        select(ReviewItem.thumbnail)
        .where(ReviewItem.sha256 == sha, ReviewItem.final_label.in_(sorted(RISK_LABELS)))
        .order_by(ReviewItem.decided_at.desc())
        .limit(1)
    )
    return bytes(thumb) if thumb else None


def _entry_sha256(engine: Engine, entry_id: int) -> str | None:
    try:
        from karung.serve.bank.store import BankStore

        entry = BankStore(engine).get(entry_id)
    except Exception:  # unknown entry, or no bank area: there is simply no picture
        return None
    return entry.sha256
