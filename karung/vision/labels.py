"""The label set and the decision vocabulary shared by training, scoring and review."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

LABELS: Final = ("bale", "sack", "garment", "other")
RISK_LABELS: Final = frozenset({"bale", "sack"})


class Decision(StrEnum):
    """What a platform should do with a listing photo."""

    BLOCK = "block"
    REVIEW = "review"
    ALLOW = "allow"


@dataclass(frozen=True)
class Thresholds:
    """Cut points on ``risk = P(bale) + P(sack)``.

    ``risk >= block`` blocks; ``review <= risk < block`` goes to a moderator; below is allowed.
    """

    block: float = 0.9
    review: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.block <= 1.0:
            raise ValueError(f"need 0 <= review <= block <= 1, got {self.review}, {self.block}")

    def decide(self, risk: float) -> Decision:
        """Map a risk score to a :class:`Decision`."""
        if risk >= self.block:
            return Decision.BLOCK
        if risk >= self.review:
            return Decision.REVIEW
        return Decision.ALLOW

    def to_dict(self) -> dict[str, float]:
        """Plain-data form stored inside checkpoints."""
        return {"block": self.block, "review": self.review}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Thresholds:
        """Inverse of :meth:`to_dict`."""
        return cls(block=float(data["block"]), review=float(data["review"]))
