"""Moderator decisions: label, skip, undo, and the double-review rule.

Rules (all enforced here, whatever the UI does):

* only the moderator holding an item's lease may decide or skip it;
* a first decision samples the item for double review (``double_review_share``, a stable function
  of the image's sha256); such an item goes back to the queue for an independent second
  moderator, who never sees the first label;
* if the two disagree a third moderator adjudicates and that label is final;
* when the required number of labels is reached the item is ``decided`` and its effects run (bank,
  webhook) in the same transaction;
* undo takes back the moderator's latest decision (within ``undo_window_seconds``, and only while
  nobody acted on the item since), reverts its effects and hands the item back to them.

Every change is written to the audit log with the item's state before and after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from karung.serve.review.audit import item_state, record
from karung.serve.review.errors import (
    InvalidLabel,
    ItemNotFound,
    NotClaimed,
    NothingToUndo,
    UndoNotAllowed,
)
from karung.serve.review.models import ReviewDecision, ReviewItem, utcnow
from karung.serve.review.settings import DEFAULT_REASON_CODES
from karung.vision.labels import LABELS

SKIP: Final = "skip"


class Effects(Protocol):
    """What a final decision does outside the queue (see :mod:`karung.serve.review.effects`)."""

    def on_final(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Run when ``item`` gets its final label."""

    def on_undo(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Run when the decision that made ``item`` final is undone."""


class NoEffects:
    """Effects that do nothing (for tools and tests that only exercise the queue)."""

    def on_final(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Do nothing."""

    def on_undo(self, session: Session, item: ReviewItem, decision: ReviewDecision) -> None:
        """Do nothing."""


@dataclass(frozen=True)
class Policy:
    """The moderation rules, as plain values."""

    double_review_share: float = 0.05
    lease_seconds: int = 300
    undo_window_seconds: int = 900
    reason_codes: tuple[str, ...] = field(default=DEFAULT_REASON_CODES)

    def __post_init__(self) -> None:
        if not 0.0 <= self.double_review_share <= 1.0:
            raise ValueError("double_review_share must be within [0, 1]")
        if not self.reason_codes:
            raise ValueError("at least one reason code is needed")


def sampled_for_double_review(sha256: str, share: float) -> bool:
    """Stable draw: the same image is always (or never) double-reviewed at a given share."""
    digest = hashlib.sha256(b"karung-double-review:" + sha256.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < share


def decide(
    session: Session,
    item_id: int,
    moderator: str,
    label: str,
    reason_code: str,
    *,
    policy: Policy,
    effects: Effects,
    now: datetime | None = None,
) -> ReviewItem:
    """Record ``moderator``'s label for a held item; return the item. The caller commits."""
    if label not in LABELS:
        raise InvalidLabel(f"label must be one of {', '.join(LABELS)}, got {label!r}")
    if reason_code not in policy.reason_codes:
        raise InvalidLabel(f"reason code must be one of {', '.join(policy.reason_codes)}")
    now = now or utcnow()
    item = _hold(session, item_id, moderator, now)
    before = item_state(item)
    labels = [d.label for d in active_decisions(session, item_id)]
    if not labels:
        item.double_review = sampled_for_double_review(item.sha256, policy.double_review_share)
    labels.append(label)
    decision = ReviewDecision(
        item_id=item_id,
        moderator=moderator,
        round=len(labels),
        label=label,
        reason_code=reason_code,
        created_at=now,
    )
    session.add(decision)
    item.reviews_required = required_reviews(item.double_review, labels)
    item.claimed_by, item.lease_expires_at = None, None
    if len(labels) >= item.reviews_required:
        item.status, item.final_label, item.decided_at = "decided", label, now
        session.flush()
        effects.on_final(session, item, decision)
    else:
        item.status = "pending"  # back to the queue for the next, independent moderator
    session.flush()
    after = item_state(item) | {"label": label, "reason_code": reason_code, "round": len(labels)}
    record(session, actor=moderator, action="decide", item_id=item_id, before=before, after=after)
    return item


def required_reviews(double_review: bool, labels: list[str]) -> int:
    """1, 2 for a double-reviewed item, 3 when its two reviews disagree."""
    if not double_review:
        return 1
    return 3 if len(labels) >= 2 and labels[0] != labels[1] else 2


def skip(
    session: Session, item_id: int, moderator: str, *, now: datetime | None = None
) -> ReviewItem:
    """Pass on a held item: it goes back to the queue for someone else. The caller commits."""
    now = now or utcnow()
    item = _hold(session, item_id, moderator, now)
    before = item_state(item)
    session.add(
        ReviewDecision(
            item_id=item_id,
            moderator=moderator,
            round=0,
            label=SKIP,
            reason_code=SKIP,
            created_at=now,
        )
    )
    item.status, item.claimed_by, item.lease_expires_at = "pending", None, None
    session.flush()
    record(
        session,
        actor=moderator,
        action="skip",
        item_id=item_id,
        before=before,
        after=item_state(item),
    )
    return item


def undo_last(
    session: Session,
    moderator: str,
    *,
    policy: Policy,
    effects: Effects,
    now: datetime | None = None,
) -> ReviewItem:
    """Take back ``moderator``'s latest standing decision; the item is theirs again.

    The caller commits.
    """
    now = now or utcnow()
    last = session.scalar(
        select(ReviewDecision)
        .where(ReviewDecision.moderator == moderator, ReviewDecision.undone_at.is_(None))
        .order_by(ReviewDecision.id.desc())
        .limit(1)
    )
    if last is None:
        raise NothingToUndo("no decision to undo")
    if now - last.created_at > timedelta(seconds=policy.undo_window_seconds):
        raise UndoNotAllowed("the decision is older than the undo window")
    _check_nothing_after(session, last)
    _regain(session, last.item_id, moderator, policy.lease_seconds, now)
    item = _load(session, last.item_id)
    before = item_state(item)
    if item.status == "decided" or item.final_label is not None:
        effects.on_undo(session, item, last)
        item.final_label, item.decided_at = None, None
    last.undone_at = now
    remaining = [d.label for d in active_decisions(session, item.id) if d.id != last.id]
    if not remaining:
        item.double_review = False
    item.reviews_required = required_reviews(item.double_review, remaining)
    item.status = "claimed"
    session.flush()
    after = item_state(item) | {"undone": {"label": last.label, "round": last.round}}
    record(session, actor=moderator, action="undo", item_id=item.id, before=before, after=after)
    return item


def active_decisions(session: Session, item_id: int) -> list[ReviewDecision]:
    """An item's standing labels (skips and undone ones excluded), in order."""
    return list(
        session.scalars(
            select(ReviewDecision)
            .where(
                ReviewDecision.item_id == item_id,
                ReviewDecision.undone_at.is_(None),
                ReviewDecision.round > 0,
            )
            .order_by(ReviewDecision.id)
        )
    )


def _load(session: Session, item_id: int) -> ReviewItem:
    item = session.scalar(
        select(ReviewItem).where(ReviewItem.id == item_id).execution_options(populate_existing=True)
    )
    if item is None:
        raise ItemNotFound(f"no review item {item_id}")
    return item


def _hold(session: Session, item_id: int, moderator: str, now: datetime) -> ReviewItem:
    """Lock the item for this transaction if (and only if) ``moderator`` holds it.

    The guarded UPDATE is the check: it matches only while the item is claimed by this
    moderator, and it takes the row (PostgreSQL) or database (SQLite) write lock, so nothing can
    change the item between this check and the caller's commit. An expired lease still counts as
    held as long as nobody else has taken the item.
    """
    result: Any = session.execute(
        update(ReviewItem)
        .where(
            ReviewItem.id == item_id,
            ReviewItem.status == "claimed",
            ReviewItem.claimed_by == moderator,
        )
        .values(claimed_by=moderator)
        .execution_options(synchronize_session=False)
    )
    if int(result.rowcount) != 1:
        if session.get(ReviewItem, item_id) is None:
            raise ItemNotFound(f"no review item {item_id}")
        raise NotClaimed(f"item {item_id} is not held by {moderator}")
    return _load(session, item_id)


def _check_nothing_after(session: Session, last: ReviewDecision) -> None:
    later = session.scalar(
        select(ReviewDecision.id).where(
            ReviewDecision.item_id == last.item_id,
            ReviewDecision.id > last.id,
            ReviewDecision.undone_at.is_(None),
        )
    )
    if later is not None:
        raise UndoNotAllowed("another moderator has acted on the item since")


def _regain(
    session: Session, item_id: int, moderator: str, lease_seconds: int, now: datetime
) -> None:
    """Take the item back unless someone else holds a live lease on it (compare-and-set)."""
    held_by_other = and_(
        ReviewItem.status == "claimed",
        ReviewItem.claimed_by != moderator,
        ReviewItem.lease_expires_at > now,
    )
    result: Any = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, or_(~held_by_other, ReviewItem.claimed_by.is_(None)))
        .values(claimed_by=moderator, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if int(result.rowcount) != 1:
        raise UndoNotAllowed("another moderator holds the item now")
