"""The append-only audit log: who did what to which item, with the state before and after.

There is deliberately no update or delete function here, and migration ``0002_review`` installs
triggers (SQLite and PostgreSQL) that make the database itself refuse UPDATE, DELETE and TRUNCATE
on ``review_audit``. Lines are written in the same transaction as the change they describe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from karung.serve.review.models import AuditEntry, ReviewItem, utcnow


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    item_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one line; the caller's commit makes it permanent together with the change."""
    session.add(
        AuditEntry(
            at=utcnow(), actor=actor, action=action, item_id=item_id, before=before, after=after
        )
    )


def item_state(item: ReviewItem) -> dict[str, Any]:
    """The fields of an item that decisions change, as plain JSON."""
    return {
        "status": item.status,
        "final_label": item.final_label,
        "claimed_by": item.claimed_by,
        "reviews_required": item.reviews_required,
        "bank_refs": list(item.bank_refs or []),
    }


def entries(
    session: Session,
    *,
    item_id: int | None = None,
    actor: str | None = None,
    before_id: int | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest lines first, optionally filtered; ``before_id`` pages backwards."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if item_id is not None:
        query = query.where(AuditEntry.item_id == item_id)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    return list(session.scalars(query))
