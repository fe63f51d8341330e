"""View models of the review pages: plain dicts the Jinja templates render."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from karung.serve.review import audit
from karung.serve.review.accounts import SessionUser
from karung.serve.review.agreement import pair_agreements
from karung.serve.review.models import ReviewDecision, ReviewItem
from karung.serve.review.runtime import ReviewRuntime
from karung.serve.verdict import Match
from karung.vision.labels import LABELS

PAGE_SIZE: Final = 50
PRIVATE_IMAGE_HEADERS: Final = {"Cache-Control": "private, max-age=3600"}
QUEUE_REASONS: Final = {
    "review_band": "review band",
    "qc_allow": "QC sample · allowed",
    "qc_block": "QC sample · blocked",
    "diverse": "diverse · far from labelled photos",
}
# Landis & Koch (1977), the usual reading of kappa values.
KAPPA_BANDS: Final = (
    (0.81, "almost perfect"),
    (0.61, "substantial"),
    (0.41, "moderate"),
    (0.21, "fair"),
    (0.0, "slight"),
)


def base_context(user: SessionUser, rt: ReviewRuntime) -> dict[str, Any]:
    """What every page's layout needs."""
    return {
        "user": user.name,
        "csrf": user.csrf_token,
        "labels": LABELS,
        "reasons": rt.policy.reason_codes,
        "lease_seconds": rt.settings.lease_seconds,
    }


def card(item: ReviewItem) -> dict[str, Any]:
    """One grid cell: the image, the model's view, the listing, bank matches."""
    scores = item.scores or {}
    return {
        "id": item.id,
        "image_url": f"/review/items/{item.id}/image",
        "risk": item.risk,
        "risk_level": "high" if item.risk >= 0.75 else "mid" if item.risk >= 0.5 else "low",
        "scores": [(name, float(scores.get(name, 0.0))) for name in LABELS],
        "model_decision": item.model_decision,
        "queue_reason": QUEUE_REASONS.get(item.reason, item.reason),
        "qc": item.reason != "review_band",
        "seller_id": item.seller_id,
        "listing_id": item.listing_id,
        "cluster_size": item.cluster_size,
        "url": safe_link(item.url),
        "matches": [_match(item.id, i, m) for i, m in enumerate(item.matches or [])][:2],
        "created_at": short_time(item.created_at),
    }


def _match(item_id: int, index: int, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored match (:meth:`Match.to_dict`) and the URL of its confirmed photo."""
    match = Match.from_dict(stored)
    return match.to_dict() | {"image_url": f"/review/items/{item_id}/match/{index}/image"}


def safe_link(url: str | None) -> str | None:
    """Only http(s) links become clickable (no ``javascript:`` from a listing's data)."""
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def short_time(value: datetime | None) -> str:
    """``2026-05-01 14:03 UTC``."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def item_result(item: ReviewItem) -> dict[str, Any]:
    """The JSON answer of a keyboard action."""
    return {"item_id": item.id, "status": item.status, "final_label": item.final_label}


def history(session: Session, moderator: str | None, before: int | None) -> dict[str, Any]:
    """A page of decisions (newest first) with their items' outcome."""
    query = (
        select(ReviewDecision, ReviewItem)
        .join(ReviewItem, ReviewItem.id == ReviewDecision.item_id)
        .order_by(ReviewDecision.id.desc())
        .limit(PAGE_SIZE)
    )
    if moderator is not None:
        query = query.where(ReviewDecision.moderator == moderator)
    if before is not None:
        query = query.where(ReviewDecision.id < before)
    rows = [
        {
            "id": d.id,
            "at": short_time(d.created_at),
            "moderator": d.moderator,
            "item_id": item.id,
            "image_url": f"/review/items/{item.id}/image",
            "label": d.label,
            "reason_code": d.reason_code,
            "round": d.round,
            "undone": d.undone_at is not None,
            "status": item.status,
            "final_label": item.final_label,
            "seller_id": item.seller_id,
            "listing_id": item.listing_id,
        }
        for d, item in session.execute(query)
    ]
    return {"rows": rows, "next_before": rows[-1]["id"] if len(rows) == PAGE_SIZE else None}


def audit_rows(session: Session, item_id: int | None, before: int | None) -> dict[str, Any]:
    """A page of the audit log with what changed in each line."""
    lines = audit.entries(session, item_id=item_id, before_id=before, limit=PAGE_SIZE)
    rows = [
        {
            "id": e.id,
            "at": e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "actor": e.actor,
            "action": e.action,
            "item_id": e.item_id,
            "changes": changes(e.before, e.after),
        }
        for e in lines
    ]
    return {"rows": rows, "next_before": rows[-1]["id"] if len(rows) == PAGE_SIZE else None}


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, str]]:
    """``key: old → new`` for every key whose value differs (new keys included)."""
    before, after = before or {}, after or {}
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if old != new:
            out.append({"key": key, "before": _short(old), "after": _short(new)})
    return out


def _short(value: Any) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "…"


def agreement_rows(session: Session) -> list[dict[str, Any]]:
    """Kappa per pair with its conventional reading."""
    return [
        {
            "a": p.a,
            "b": p.b,
            "items": p.items,
            "observed": p.observed,
            "kappa": p.kappa,
            "reading": kappa_reading(p.kappa),
        }
        for p in pair_agreements(session)
    ]


def kappa_reading(kappa: float | None) -> str:
    """Landis & Koch's words for a kappa value."""
    if kappa is None:
        return "undefined (one label only)"
    for floor, words in KAPPA_BANDS:
        if kappa >= floor:
            return words
    return "poor (below chance)"
