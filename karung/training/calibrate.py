"""Calibration on validation data: temperature scaling and the block/review thresholds on risk.

Temperature scaling divides the logits by one scalar ``T`` fitted to minimise the negative
log-likelihood; it changes confidences, never the argmax. The thresholds are then chosen on the
calibrated ``risk = P(bale) + P(sack)`` (positives: bale and sack; negatives: garment, other).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Generic, TypeVar

import numpy as np

from karung.training.config import ThresholdPolicy
from karung.training.errors import CalibrationError
from karung.training.metrics import cumulative_counts, rates_at

# NLL is convex in beta = 1/T (log-sum-exp of a linear function), so golden-section search on
# beta finds the global optimum. The bracket keeps T within [0.25, 8]: on perfectly separated
# validation data the NLL keeps falling as T -> 0, and a model that needs sharpening by more
# than 4x is better retrained than calibrated.
_BETA_RANGE: Final = (0.125, 4.0)
_GOLDEN: Final = (math.sqrt(5.0) - 1.0) / 2.0


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    picked = z[np.arange(z.shape[0]), np.asarray(labels, dtype=np.int64)]
    return float(np.mean(log_norm - picked))


def _check(logits: np.ndarray, labels: np.ndarray) -> None:
    if logits.ndim != 2 or logits.shape[0] != labels.size or labels.size == 0:
        raise CalibrationError(
            f"need (N, L) logits for N labels, got {logits.shape}, {labels.size}"
        )
    if not np.all(np.isfinite(logits)):
        raise CalibrationError("logits contain NaN or infinity")


def fit_temperature(logits: np.ndarray, labels: np.ndarray, iterations: int = 80) -> float:
    """The temperature minimising validation NLL (golden-section search on ``1/T``)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64).ravel()
    _check(z, y)
    lo, hi = _BETA_RANGE
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = nll(z, y, 1.0 / a), nll(z, y, 1.0 / b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = nll(z, y, 1.0 / a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = nll(z, y, 1.0 / b)
    return float(1.0 / ((lo + hi) / 2.0))


def fit_temperature_reference(logits: np.ndarray, labels: np.ndarray) -> float:
    """Brute-force grid search over ``T`` (4,000 log-spaced values), for the parity test."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64).ravel()
    _check(z, y)
    grid = np.geomspace(1.0 / _BETA_RANGE[1], 1.0 / _BETA_RANGE[0], 4000)
    losses = [nll(z, y, float(t)) for t in grid]
    return float(grid[int(np.argmin(losses))])


At = TypeVar("At")


@dataclass(frozen=True)
class ThresholdChoice(Generic[At]):
    """The chosen cuts, how they were reached and what each costs on the data it was chosen
    on (``At``: validation rates here, real-negative shares in :mod:`~karung.training.negatives`).
    """

    block: float
    review: float
    block_rule: str
    review_rule: str
    at_block: At
    at_review: At

    @classmethod
    def measured(
        cls, cuts: tuple[float, float], rules: tuple[str, str], measure: Callable[[float], At]
    ) -> ThresholdChoice[At]:
        """The ``(block, review)`` cuts with their ``rules``, measured at each cut."""
        block, review = cuts
        return cls(block, review, rules[0], rules[1], measure(block), measure(review))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the checkpoint's training record and metrics.json)."""
        return asdict(self)


def _below(cuts: np.ndarray, i: int) -> float:
    """Midpoint between distinct cut ``i`` and the next lower distinct value (or 0).

    Every cut in that open gap flags exactly the same validation items, so the midpoint keeps
    the validation precision and recall of ``cuts[i]`` while leaving a margin on both sides
    (int8 rounding or a slightly different photo then does not flip decisions).
    """
    lower = float(cuts[i + 1]) if i + 1 < cuts.size else 0.0
    return (float(cuts[i]) + lower) / 2.0


def smallest_cut_with_precision(
    positive: np.ndarray, risk: np.ndarray, target: float
) -> float | None:
    """The lowest cut whose ``risk >= cut`` precision is >= ``target`` (mid-gap), or None."""
    tp, fp, cuts = cumulative_counts(positive, risk)
    ok = np.flatnonzero(tp / (tp + fp) >= target)
    return _below(cuts, int(ok[-1])) if ok.size else None


def largest_cut_with_recall(positive: np.ndarray, risk: np.ndarray, target: float) -> float:
    """The highest cut whose ``risk >= cut`` recall is >= ``target`` (mid-gap)."""
    tp, _, cuts = cumulative_counts(positive, risk)
    ok = np.flatnonzero(tp / max(int(np.sum(positive)), 1) >= target)
    return _below(cuts, int(ok[0]) if ok.size else cuts.size - 1)


def choose_thresholds(
    risk: np.ndarray, positive: np.ndarray, policy: ThresholdPolicy | None = None
) -> ThresholdChoice[dict[str, float]]:
    """Pick ``block`` and ``review`` on validation ``risk`` (``positive`` = bale or sack).

    Block: the smallest cut with precision >= ``target_precision`` (placed mid-gap below the
    lowest qualifying risk value), raised to ``min_block``. If no cut reaches the target (the
    highest-risk item is a negative), block falls back to 1.0 so that only saturated risk
    blocks and everything else risky goes to review; ``block_rule`` says so.
    Review: the largest cut with recall >= ``review_recall``, but at most ``review_ratio`` x
    block (so a review band exists below block) and at least ``min_review``.
    """
    pol = policy or ThresholdPolicy()
    r = np.asarray(risk, dtype=np.float64).ravel()
    y = np.asarray(positive, dtype=bool).ravel()
    if r.size != y.size or r.size == 0:
        raise CalibrationError(
            f"risk and labels must be non-empty and equal length: {r.size}, {y.size}"
        )
    if y.all() or not y.any():
        raise CalibrationError("validation data needs both risky (bale/sack) and safe items")
    cut = smallest_cut_with_precision(y, r, pol.target_precision)
    if cut is None:
        block, block_rule = 1.0, f"fallback: precision {pol.target_precision} unreachable"
    elif cut < pol.min_block:
        block, block_rule = pol.min_block, f"floor min_block (precision cut was {cut:.4f})"
    else:
        block, block_rule = cut, f"smallest cut with precision >= {pol.target_precision}"
    recall_cut = largest_cut_with_recall(y, r, pol.review_recall)
    review = min(block, max(pol.min_review, min(recall_cut, pol.review_ratio * block)))
    review_rule = f"largest cut with recall >= {pol.review_recall} (was {recall_cut:.4f})"
    if review != recall_cut:
        review_rule += f", limited to [min_review, {pol.review_ratio} x block]"
    return ThresholdChoice.measured(
        (block, review), (block_rule, review_rule), lambda cut: rates_at(y, r, cut)
    )
