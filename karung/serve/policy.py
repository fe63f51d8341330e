"""The decision policy: bank matches block, then the model's risk against the thresholds.

Pure functions, so the policy is testable without a server and reads in one place:

1. a match in the hash bank blocks (``bank_match:<kind>:distance=<d>``);
2. ``risk >= block`` blocks (``risk>=block_threshold``);
3. ``review <= risk < block`` goes to moderators (``risk>=review_threshold``);
4. anything else is allowed (``risk<review_threshold``).

Thresholds come from the model and may be overridden, in increasing precedence, by the service
settings, the client's API key and the request itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from karung.errors import KarungError
from karung.vision.labels import Decision, Thresholds


class MatchLike(Protocol):
    """What the policy needs from a bank match."""

    @property
    def kind(self) -> str: ...

    @property
    def distance(self) -> int: ...


@dataclass(frozen=True)
class Verdict:
    """The final decision, the model's own decision and why."""

    decision: Decision
    model_decision: Decision
    reasons: tuple[str, ...]


class InvalidThresholds(KarungError, ValueError, code="invalid_thresholds", status=422):
    """Overrides that do not form ``0 <= review <= block <= 1``."""


def resolve_thresholds(
    model: Thresholds, *overrides: tuple[float | None, float | None]
) -> Thresholds:
    """Apply ``(block, review)`` overrides in order; ``None`` keeps the value below it."""
    block, review = model.block, model.review
    for new_block, new_review in overrides:
        block = block if new_block is None else float(new_block)
        review = review if new_review is None else float(new_review)
    try:
        return Thresholds(block=block, review=review)
    except ValueError as exc:
        raise InvalidThresholds(str(exc)) from exc


def match_reason(match: MatchLike) -> str:
    """``bank_match:pdq:distance=12``."""
    return f"bank_match:{match.kind}:distance={int(match.distance)}"


def decide(risk: float, matches: Sequence[MatchLike], thresholds: Thresholds) -> Verdict:
    """Combine bank matches and the model's risk into a :class:`Verdict`."""
    model_decision = thresholds.decide(risk)
    model_reason = {
        Decision.BLOCK: "risk>=block_threshold",
        Decision.REVIEW: "risk>=review_threshold",
        Decision.ALLOW: "risk<review_threshold",
    }[model_decision]
    bank_reasons = tuple(match_reason(m) for m in matches)
    decision = Decision.BLOCK if bank_reasons else model_decision
    return Verdict(decision, model_decision, (*bank_reasons, model_reason))


def queue_reason(
    decision: Decision, draw: float, sample_allow: float, sample_block: float
) -> str | None:
    """Why an item goes to the moderators' queue, or ``None``.

    Review-band items always go; a random ``draw`` in ``[0, 1)`` picks the QC samples of allowed
    and blocked items, so moderators keep auditing the automatic decisions.
    """
    if decision is Decision.REVIEW:
        return "review_band"
    if decision is Decision.ALLOW and draw < sample_allow:
        return "qc_allow"
    if decision is Decision.BLOCK and draw < sample_block:
        return "qc_block"
    return None
