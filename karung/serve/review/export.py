"""Decided queue items as a training set: ``images/`` + ``manifest.csv`` for ``karung train``.

The manifest has the columns the trainer reads (``file,label,split,sender_id``) plus provenance
columns it ignores. ``split`` is a stable function of the seller (a seller's photos share a room
and a phone, so they must not straddle train and val); ``sender_id`` is the seller, or the image's
sha256 when the seller is unknown. Images are the stored 384 px copies, which is more than the
trainer's input size. When the same photo was decided more than once, the latest decision wins.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from karung.serve.review.errors import InvalidExportOption
from karung.serve.review.models import ReviewItem
from karung.vision.manifest import MANIFEST_FILE, REVIEW_COLUMNS, write_manifest

IMAGES_DIR: Final = "images"


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    images: int
    labels: dict[str, int]
    splits: dict[str, int]
    manifest: Path


def parse_since(text: str) -> datetime:
    """``2026-05-01`` or an ISO datetime; a missing timezone means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidExportOption(f"not an ISO date or datetime: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def seller_split(group: str, val_fraction: float) -> str:
    """``val`` for about ``val_fraction`` of sellers, ``train`` for the rest, always the same."""
    if not 0.0 <= val_fraction <= 1.0:
        raise InvalidExportOption(f"val_fraction must be within [0, 1], got {val_fraction}")
    digest = hashlib.sha256(b"karung-review-split-v1:" + group.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2.0**64 < val_fraction else "train"


def decided_items(session: Session, since: datetime | None = None) -> Iterator[ReviewItem]:
    """Decided items, oldest decision first; only the latest decision of each photo."""
    query = select(ReviewItem).where(
        ReviewItem.status == "decided", ReviewItem.final_label.is_not(None)
    )
    if since is not None:
        query = query.where(ReviewItem.decided_at >= since)
    latest: dict[str, ReviewItem] = {}
    for item in session.scalars(query.order_by(ReviewItem.decided_at, ReviewItem.id)):
        latest.pop(item.sha256, None)  # re-insert so the dict stays in decision order
        latest[item.sha256] = item
    yield from latest.values()


def export_dataset(
    session: Session,
    out: Path,
    *,
    since: datetime | None = None,
    val_fraction: float = 0.2,
    progress: bool = True,
) -> ExportSummary:
    """Write ``out/images/<sha256>.jpg`` and ``out/manifest.csv``; return counts.

    Re-exporting into the same folder refreshes the manifest and skips images already there.
    """
    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    items = list(decided_items(session, since))
    for item in tqdm(items, desc="export", unit="img", disable=not progress):
        rel = f"{IMAGES_DIR}/{item.sha256}.jpg"
        _write_once(out / rel, item.thumbnail)
        rows.append(_row(item, rel, val_fraction))
    manifest = write_manifest(out / MANIFEST_FILE, REVIEW_COLUMNS, rows)
    return ExportSummary(
        images=len(rows),
        labels=dict(Counter(r["label"] for r in rows)),
        splits=dict(Counter(r["split"] for r in rows)),
        manifest=manifest,
    )


def _row(item: ReviewItem, rel: str, val_fraction: float) -> dict[str, str]:
    group = item.seller_id or f"sha256:{item.sha256}"
    return {
        "file": rel,
        "label": str(item.final_label),
        "split": seller_split(group, val_fraction),
        "sender_id": group,
        "sha256": item.sha256,
        "item_id": str(item.id),
        "listing_id": item.listing_id or "",
        "decided_at": item.decided_at.isoformat() if item.decided_at else "",
        "reviews_required": str(item.reviews_required),
        "queue_reason": item.reason,
        "model_decision": item.model_decision,
        "model_risk": f"{item.risk:.6f}",
        "model_version": item.model_version,
    }


def _write_once(path: Path, data: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(data):
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
