"""Feeding the review queue: the scorer calls :func:`enqueue` for review-band and QC items."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Final

from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from karung.serve.review.models import ReviewItem
from karung.serve.verdict import Match

THUMBNAIL_SIZE: Final = 384
# Items whose distance to the block threshold falls in the same band of this width are ordered
# by the seller's cluster size (see karung.serve.review.claims).
PRIORITY_BAND: Final = 0.05
REASONS: Final = frozenset({"review_band", "qc_allow", "qc_block", "diverse"})


@dataclass(frozen=True)
class QueueItemIn:
    """What the scorer knows about an image it sends to moderators."""

    sha256: str
    thumbnail: bytes  # from make_thumbnail, encoded before the enqueueing transaction opens
    scores: dict[str, float]
    risk: float
    model_decision: str
    model_version: str
    block_threshold: float
    reason: str = "review_band"
    url: str | None = None
    listing_id: str | None = None
    seller_id: str | None = None
    matches: tuple[Match, ...] = ()
    cluster_size: int = 1

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown review reason {self.reason!r}")


def make_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """A JPEG thumbnail (longest side ``size``) stored with the item, so the UI never refetches."""
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def priority_bucket(distance: float) -> int:
    """Index of the :data:`PRIORITY_BAND`-wide band ``distance`` falls in (0 is closest)."""
    # The epsilon keeps 0.2 in band 4 although 0.2 / 0.05 is 3.9999999999999996 in floats.
    return math.floor(distance / PRIORITY_BAND + 1e-9)


def enqueue(session: Session, item: QueueItemIn) -> int:
    """Add ``item`` unless the same image is already waiting; return the queue item's id.

    The caller commits. Idempotent per sha256 while an item is pending or claimed, so a seller who
    re-posts the same photo does not flood the queue. ``cluster_size`` becomes at least the number
    of the seller's items waiting in the queue (this one included).
    """
    existing = session.scalar(
        select(ReviewItem.id).where(
            ReviewItem.sha256 == item.sha256, ReviewItem.status.in_(("pending", "claimed"))
        )
    )
    if existing is not None:
        return int(existing)
    distance = abs(float(item.risk) - float(item.block_threshold))
    if item.reason == "diverse":  # rare by construction and there to be labelled: first
        distance = 0.0
    row = ReviewItem(
        status="pending",
        reason=item.reason,
        sha256=item.sha256,
        url=item.url,
        listing_id=item.listing_id,
        seller_id=item.seller_id,
        scores=dict(item.scores),
        risk=float(item.risk),
        model_decision=item.model_decision,
        matches=[m.to_dict() for m in item.matches],
        model_version=item.model_version,
        threshold_distance=distance,
        priority_bucket=priority_bucket(distance),
        cluster_size=_grow_cluster(session, item.seller_id, max(1, int(item.cluster_size))),
        thumbnail=item.thumbnail,
    )
    session.add(row)
    session.flush()
    return int(row.id)


def _grow_cluster(session: Session, seller_id: str | None, at_least: int) -> int:
    """Size of the seller's cluster once this item joins it; the waiting items move up too.

    A seller with many photos in the queue is more likely a bale trader (and one decision
    informs the rest), so the whole cluster gains priority as it grows.
    """
    if not seller_id:
        return at_least
    waiting = ReviewItem.seller_id == seller_id, ReviewItem.status.in_(("pending", "claimed"))
    size = max(
        at_least, int(session.scalar(select(func.count(ReviewItem.id)).where(*waiting)) or 0) + 1
    )
    session.execute(
        update(ReviewItem)
        .where(*waiting, ReviewItem.cluster_size < size)
        .values(cluster_size=size)
        .execution_options(synchronize_session=False)
    )
    return size
