"""What a final decision does outside the queue: feed the hash bank and tell the platform.

* a confirmed ``bale`` or ``sack`` adds the image's hashes to the configured bank (default
  ``confirmed``) with its listing and seller, so the next re-upload of that photo is blocked on
  sight; the entry ids are kept on the item so an undo can take them out again;
* every final decision (and every undo of one) becomes a webhook event in the outbox, written in
  the same transaction as the decision.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image
from sqlalchemy.orm import Session

from karung.serve.review.models import ReviewDecision, ReviewItem
from karung.serve.review.outbox import add_event
from karung.vision.labels import RISK_LABELS


class BankWriter(Protocol):
    """The two bank operations the review loop needs (the bank service provides them)."""

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
        """Add the image's hashes to ``bank`` inside ``session``; return the new entry ids."""
        ...

    def remove_entries(self, session: Session, bank: str, entry_ids: Sequence[int]) -> int:
        """Remove entries added by :meth:`add_confirmed`; return how many were removed."""
        ...


@dataclass(frozen=True)
class ReviewEffects:
    """The effects of final decisions, configured once at start-up."""

    bank: BankWriter | None
    bank_name: str = "confirmed"
    webhook: bool = False

    def on_final(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Bank a confirmed bale or sack; queue the webhook event."""
        if self.bank is not None and item.final_label in RISK_LABELS:
            ids = self.bank.add_confirmed(
                session,
                thumbnail_image(item),
                bank=self.bank_name,
                sha256=item.sha256,
                listing_id=item.listing_id,
                seller_id=item.seller_id,
                note=f"review item {item.id}: {item.final_label} by {decision.moderator}",
            )
            item.bank_refs = [{"bank": self.bank_name, "entry_ids": [int(i) for i in ids]}]
        if self.webhook:
            add_event(session, "review.decided", item.id, decision_payload(item, decision))

    def on_undo(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Take the bank entries back out; tell the platform the decision no longer stands."""
        if self.bank is not None:
            for ref in item.bank_refs or []:
                self.bank.remove_entries(session, str(ref["bank"]), list(ref["entry_ids"]))
        item.bank_refs = []
        if self.webhook:
            payload = decision_payload(item, decision) | {"undone": True}
            add_event(session, "review.undone", item.id, payload)


def decision_payload(item: ReviewItem, decision: ReviewDecision) -> dict[str, Any]:
    """What the platform learns about a decision (no moderator names, no image bytes)."""
    return {
        "item_id": item.id,
        "sha256": item.sha256,
        "url": item.url,
        "listing_id": item.listing_id,
        "seller_id": item.seller_id,
        "label": item.final_label or decision.label,
        "reason_code": decision.reason_code,
        "decided_at": decision.created_at.isoformat(),
        "reviews": decision.round,
        "model": {
            "version": item.model_version,
            "decision": item.model_decision,
            "risk": item.risk,
        },
        "bank": item.bank_refs[0]["bank"] if item.bank_refs else None,
    }


def thumbnail_image(item: ReviewItem) -> Image.Image:
    """The stored copy of the item's image, decoded."""
    with Image.open(io.BytesIO(item.thumbnail)) as img:
        return img.convert("RGB")
