"""Diverse review sampling: a small share of photos far from everything moderators have seen.

The queue is fed mostly near the threshold (the review band) and by small QC samples; both only
cover photos that look like what the model already knows. A new photo style that the model
confidently allows never reaches a moderator, so retraining never learns it. Here, a configurable
share of the items nothing else queued (``KARUNG_REVIEW_DIVERSE_SHARE``) is compared with every
photo already in the queue or decided, and queued with reason ``diverse`` when it is far from all
of them (``KARUNG_REVIEW_DIVERSE_DISTANCE``).

The embedding is deliberately cheap (the served model exposes probabilities only): the photo
shrunk to a 4x4 colour grid, 48 numbers in [0, 1]; the distance is the root-mean-square
difference, so 0.1 means the grids differ by a tenth of full intensity on average. The queue's
embeddings are kept in memory and refreshed from the stored thumbnails by the service's poll loop.
"""

from __future__ import annotations

import io
import logging
import random
import threading
from typing import Final

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.models import ReviewItem

GRID: Final = 4
MAX_KEPT: Final = 50_000  # newest embeddings kept; older ones rarely decide anything
REASON: Final = "diverse"
log = logging.getLogger(__name__)


def embed(image: Image.Image) -> np.ndarray:
    """The 4x4 RGB grid of an image, flattened to 48 values in [0, 1]."""
    small = image.convert("RGB").resize((GRID, GRID), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32).reshape(-1) / 255.0


class DiverseSampler:
    """Decides whether an otherwise unqueued photo goes to moderators for its novelty."""

    def __init__(self, share: float, distance: float) -> None:
        self.share = share
        self.distance = distance
        self._seen = np.zeros((0, GRID * GRID * 3), dtype=np.float32)
        # Photos picked but not yet read back from the queue, by sha256: remembered at once so
        # that the next photo of the same new style is not novel, and dropped when a refresh
        # reads their queue item's thumbnail, so a picked photo is not kept twice.
        self._picked: dict[str, np.ndarray] = {}
        self._last_id = 0
        self._lock = threading.Lock()

    @property
    def known(self) -> int:
        """How many queued or decided photos the sampler compares with."""
        return int(self._seen.shape[0]) + len(self._picked)

    def pick(self, pixels: np.ndarray, rng: random.Random, sha256: str) -> str | None:
        """``"diverse"`` for a sampled photo far from all known ones, else None.

        ``pixels`` is the model input ``(1, S, S, 3)`` or ``(S, S, 3)`` uint8, ``sha256`` the
        image's, under which it will be queued. No random number is
        drawn when the share is 0, so a service without diverse sampling behaves as before.
        """
        if self.share <= 0 or rng.random() >= self.share:
            return None
        vec = embed(Image.fromarray(np.asarray(pixels).reshape(pixels.shape[-3:])))
        with self._lock:
            # The two sets apart: stacking them would copy every known embedding per photo.
            for known in (self._seen, *(v[None, :] for v in self._picked.values())):
                if known.shape[0] and _nearest_rms(known, vec) < self.distance:
                    return None
            self._picked[sha256] = vec
            if len(self._picked) > MAX_KEPT:  # picks whose queue item never came: oldest out
                del self._picked[next(iter(self._picked))]
        return REASON

    def refresh(self, sessions: sessionmaker[Session], batch: int = 2000) -> int:
        """Embed the queue items added since the last refresh (any status); the count.

        A picked photo whose queue item is read here drops its provisional copy."""
        with sessions() as session:
            rows = session.execute(
                select(ReviewItem.id, ReviewItem.thumbnail, ReviewItem.sha256)
                .where(ReviewItem.id > self._last_id)
                .order_by(ReviewItem.id)
                .limit(batch)
            ).all()
        vecs = []
        for _, thumb, _ in rows:
            try:
                vecs.append(embed(Image.open(io.BytesIO(thumb))))
            except (OSError, ValueError):
                log.warning("unreadable review thumbnail skipped")
        with self._lock:
            for _, _, sha256 in rows:
                self._picked.pop(sha256, None)
            if rows:
                self._last_id = int(rows[-1][0])
            if vecs:
                self._seen = np.vstack([self._seen, np.stack(vecs)])[-MAX_KEPT:]
        return len(rows)


def _nearest_rms(known: np.ndarray, vec: np.ndarray) -> float:
    """The root-mean-square difference of ``vec`` from the nearest row of ``known``."""
    return float(np.sqrt(np.mean((known - vec) ** 2, axis=1)).min())


def queue_share(session: Session) -> tuple[int, int]:
    """``(diverse, all)`` items waiting in the queue (pending or claimed)."""
    from sqlalchemy import func

    waiting = ReviewItem.status.in_(("pending", "claimed"))
    rows = session.execute(
        select(ReviewItem.reason, func.count(ReviewItem.id))
        .where(waiting)
        .group_by(ReviewItem.reason)
    ).all()
    counts = {str(reason): int(n) for reason, n in rows}
    return counts.get(REASON, 0), sum(counts.values())
