"""Leases on queue items: claim the next items by priority, renew, release, expire.

A claim is a compare-and-set ``UPDATE ... WHERE status = 'pending' OR lease expired``: whoever's
UPDATE changes the row holds it, so two moderators never hold one item, on SQLite (writers are
serialised) and on PostgreSQL (the UPDATE re-checks its WHERE after waiting on a row lock). On
PostgreSQL the candidate rows are also picked with ``FOR UPDATE SKIP LOCKED`` so concurrent
moderators take different items instead of queueing behind each other's locks.

Priority: the 0.05-wide band of distance to the block threshold first (closest first), then the
seller's cluster size (largest first), then the exact distance and age.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from karung.serve.review.models import ReviewDecision, ReviewItem, utcnow

PRIORITY_ORDER: Final = (
    ReviewItem.priority_bucket.asc(),
    ReviewItem.cluster_size.desc(),
    ReviewItem.threshold_distance.asc(),
    ReviewItem.id.asc(),
)
_MAX_ROUNDS: Final = 5


def claimable(now: datetime) -> ColumnElement[bool]:
    """Pending, or claimed with a lease that has run out."""
    return or_(
        ReviewItem.status == "pending",
        and_(ReviewItem.status == "claimed", ReviewItem.lease_expires_at < now),
    )


def not_seen_by(moderator: str) -> ColumnElement[bool]:
    """The moderator has no standing decision (label or skip) on the item.

    This is what keeps the second review of a double-reviewed item independent: the first
    moderator can never claim it again.
    """
    seen = select(ReviewDecision.id).where(
        ReviewDecision.item_id == ReviewItem.id,
        ReviewDecision.moderator == moderator,
        ReviewDecision.undone_at.is_(None),
    )
    return ~exists(seen)


def claim_batch(
    session: Session,
    moderator: str,
    *,
    limit: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> list[ReviewItem]:
    """Hold up to ``limit`` items for ``moderator`` and return them in priority order.

    Items the moderator already holds keep their place (their leases are renewed) so reloading the
    page shows the same grid. The caller commits (promptly: on PostgreSQL the picked rows stay
    locked until then).
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    held = renew(session, moderator, lease_seconds=lease_seconds, now=now)
    tried: set[int] = set(held)
    for _ in range(_MAX_ROUNDS):
        need = limit - len(held)
        if need <= 0:
            break
        candidates = _candidates(session, moderator, need, now, exclude=tried)
        if not candidates:
            break
        tried.update(candidates)
        for candidate in candidates:
            if len(held) < limit and _take(session, candidate, moderator, now, expires):
                held.append(candidate)
    return held_items(session, moderator, ids=held)


def _candidates(
    session: Session, moderator: str, need: int, now: datetime, *, exclude: set[int]
) -> list[int]:
    query = (
        select(ReviewItem.id)
        .where(claimable(now), not_seen_by(moderator))
        .order_by(*PRIORITY_ORDER)
    )
    if exclude:
        query = query.where(ReviewItem.id.not_in(exclude))
    if session.get_bind().dialect.name == "postgresql":
        query = query.limit(need).with_for_update(skip_locked=True, of=ReviewItem)
    else:
        # No row locks on SQLite: over-fetch a little so losing a race still fills the batch.
        query = query.limit(need * 2 + 4)
    return [int(i) for i in session.scalars(query)]


def _take(session: Session, item_id: int, moderator: str, now: datetime, expires: datetime) -> bool:
    """The compare-and-set: True when this UPDATE moved the item to ``moderator``."""
    result: Any = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, claimable(now))
        .values(status="claimed", claimed_by=moderator, lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1


def renew(
    session: Session, moderator: str, *, lease_seconds: int, now: datetime | None = None
) -> list[int]:
    """Extend the moderator's unexpired leases; return those items' ids.

    An expired lease is not renewed here: someone else may already have taken the item, and if
    not, :func:`claim_batch` takes it back through the normal compare-and-set.
    """
    now = now or utcnow()
    ids = [
        int(i)
        for i in session.scalars(
            select(ReviewItem.id).where(
                ReviewItem.status == "claimed",
                ReviewItem.claimed_by == moderator,
                ReviewItem.lease_expires_at > now,
            )
        )
    ]
    if ids:
        session.execute(
            update(ReviewItem)
            .where(
                ReviewItem.id.in_(ids),
                ReviewItem.claimed_by == moderator,
                ReviewItem.status == "claimed",
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
    return ids


def release(session: Session, moderator: str, item_ids: Sequence[int] | None = None) -> int:
    """Give back held items (all of them when ``item_ids`` is None); return how many."""
    query = update(ReviewItem).where(
        ReviewItem.status == "claimed", ReviewItem.claimed_by == moderator
    )
    if item_ids is not None:
        query = query.where(ReviewItem.id.in_(list(item_ids)))
    result: Any = session.execute(
        query.values(status="pending", claimed_by=None, lease_expires_at=None).execution_options(
            synchronize_session=False
        )
    )
    return int(result.rowcount)


def held_items(
    session: Session, moderator: str, *, ids: Sequence[int] | None = None
) -> list[ReviewItem]:
    """The items ``moderator`` holds (optionally only ``ids``), fresh from the database."""
    query = (
        select(ReviewItem)
        .where(ReviewItem.status == "claimed", ReviewItem.claimed_by == moderator)
        .order_by(*PRIORITY_ORDER)
        .execution_options(populate_existing=True)
    )
    if ids is not None:
        query = query.where(ReviewItem.id.in_(list(ids)))
    return list(session.scalars(query))


def pending_count(session: Session, now: datetime | None = None) -> int:
    """How many items wait for a moderator (pending or with an expired lease)."""
    return int(
        session.scalar(select(func.count(ReviewItem.id)).where(claimable(now or utcnow()))) or 0
    )
