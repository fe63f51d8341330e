"""``GET /v1/review/items/{id}``: what moderators made of an item the platform sent to review.

The ``review`` API-key scope guards this: a platform that got a ``review_item_id`` from
``/v1/score`` polls it here (or takes the webhook) to act on the moderators' label.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from karung.serve.deps import ReviewScope, SessionsDep
from karung.serve.errors import NotFound
from karung.serve.review.models import ReviewItem

router = APIRouter(prefix="/v1/review", tags=["review"])


@router.get("/items/{item_id}")
async def review_item(item_id: int, _: ReviewScope, sessions: SessionsDep) -> dict[str, Any]:
    """The item's status (``pending``, ``claimed``, ``decided``) and, once decided, its label."""

    def load() -> dict[str, Any] | None:
        with sessions() as session:
            item = session.get(ReviewItem, item_id)
            if item is None:
                return None
            return {
                "id": item.id,
                "status": item.status,
                "final_label": item.final_label,
                "decided_at": item.decided_at.isoformat() if item.decided_at else None,
                "reason": item.reason,
                "sha256": item.sha256,
                "listing_id": item.listing_id,
                "seller_id": item.seller_id,
                "model_decision": item.model_decision,
            }

    found = await run_in_threadpool(load)
    if found is None:
        raise NotFound(f"no review item {item_id}")
    return found
