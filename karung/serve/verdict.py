"""The typed verdict on one scored item, and the bank match it may carry.

The scoring pipeline (:mod:`karung.serve.scoring`) returns one :class:`ScoredItem` or
:class:`FailedItem` per request item; they are turned into plain data once, at the edges (the
HTTP answer, the review queue's row, the batch rows), with :meth:`ScoredItem.to_dict`. A
:class:`Match` travels typed from the bank matcher through the verdict to the review queue,
which stores :meth:`Match.to_dict` and reads it back with :meth:`Match.from_dict`.

Import-light (no torch, no database): the review area and the batch runner use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from karung.vision.labels import Decision

MatchKind = Literal["sha256", "pdq", "phash"]
_MATCH_KINDS = frozenset(get_args(MatchKind))


@dataclass(frozen=True)
class Match:
    """One bank entry an image matched, and how."""

    entry_id: int
    bank: str
    kind: MatchKind
    distance: int
    listing_id: str | None
    seller_id: str | None
    source_url: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the API answers and the review queue stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        """Inverse of :meth:`to_dict` (a stored review item's matches, a batch row's)."""
        kind = str(data["kind"])
        if kind not in _MATCH_KINDS:
            raise ValueError(f"unknown match kind {kind!r}")
        return cls(
            entry_id=int(data["entry_id"]),
            bank=str(data["bank"]),
            kind=cast(MatchKind, kind),
            distance=int(data["distance"]),
            listing_id=data.get("listing_id"),
            seller_id=data.get("seller_id"),
            source_url=data.get("source_url"),
        )


@dataclass(frozen=True)
class ItemRef:
    """Which request item an answer is about (echoed back to the platform)."""

    index: int
    url: str | None = None
    listing_id: str | None = None
    seller_id: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class ScoredItem:
    """The verdict on one image: the model's view, the policy's decision and why.

    ``model_decision`` is what the risk alone decides under the request's thresholds;
    ``decision`` is final (a bank match blocks whatever the model thinks).
    """

    ref: ItemRef
    sha256: str
    scores: Mapping[str, float]
    risk: float
    label: str
    model_decision: Decision
    decision: Decision
    reasons: tuple[str, ...]
    matches: tuple[Match, ...]
    model_version: str
    notes: tuple[str, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    review_item_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item's answer in ``POST /v1/score`` (``status`` ok)."""
        return {
            **asdict(self.ref),
            "status": "ok",
            "sha256": self.sha256,
            "scores": dict(self.scores),
            "risk": self.risk,
            "label": self.label,
            "decision": str(self.decision),
            "model_decision": str(self.model_decision),
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "matches": [m.to_dict() for m in self.matches],
            "model_version": self.model_version,
            "review_item_id": self.review_item_id,
            "timings_ms": dict(self.timings_ms),
        }


@dataclass(frozen=True)
class FailedItem:
    """An item that could not be scored: its stable error ``code`` and message."""

    ref: ItemRef
    code: str
    message: str
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The item's answer in ``POST /v1/score`` (``status`` error)."""
        error = {"code": self.code, "message": self.message}
        return {
            **asdict(self.ref),
            "status": "error",
            "error": error,
            "timings_ms": dict(self.timings_ms),
        }


ItemVerdict = ScoredItem | FailedItem
