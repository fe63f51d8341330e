"""Block and review thresholds chosen on REAL negative photos, with confidence intervals.

Scores of synthetic validation images do not carry over to real listings (the shipped model of
the first generation scored 0.997 AUC on synthetic validation and 0.908 on real photos), so the
default recipe sets its cuts where they cost honest sellers a known share: ``block`` is the
lowest cut that at most ``block_rate`` of the held-out real negatives reach, ``review`` the
lowest that at most ``review_rate`` reach. Each cut sits mid-gap between two observed scores,
so a slightly different photo or int8 rounding does not flip a decision. The expected real
false-block rate is reported with an exact (Clopper-Pearson) 95 % interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from karung.training.calibrate import ThresholdChoice
from karung.training.errors import CalibrationError


@dataclass(frozen=True)
class NegativePolicy:
    """Target shares of real negatives at each cut, and floors that always hold."""

    block_rate: float = 0.005
    review_rate: float = 0.03
    min_block: float = 0.5
    min_review: float = 0.2

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise CalibrationError(f"{name} must be in [0, 1], got {value}")
        if self.block_rate > self.review_rate:
            raise CalibrationError("block_rate must not exceed review_rate")
        if self.min_review > self.min_block:
            raise CalibrationError("min_review must not exceed min_block")


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials (bisection on the CDF)."""
    if n <= 0 or not 0 <= k <= n:
        raise CalibrationError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    tail = (1.0 - confidence) / 2.0
    lo = 0.0 if k == 0 else _solve(lambda p: _sf(k, n, p) - tail)
    hi = 1.0 if k == n else _solve(lambda p: tail - _cdf(k, n, p))
    return lo, hi


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def _cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), 0 < p < 1."""
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1)))


def _sf(k: int, n: int, p: float) -> float:
    """P(X >= k)."""
    return 1.0 - _cdf(k - 1, n, p) if k > 0 else 1.0


def _solve(f: Any, lo: float = 1e-12, hi: float = 1.0 - 1e-12) -> float:
    """The root of an increasing function on (0, 1) by bisection (60 halvings: ~1e-18)."""
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def cut_for_rate(neg_risk: np.ndarray, rate: float) -> float:
    """The lowest cut (mid-gap) that at most ``floor(rate * n)`` negatives reach (``>=``)."""
    r = np.sort(np.asarray(neg_risk, dtype=np.float64).ravel())[::-1]
    if r.size == 0:
        raise CalibrationError("no real negatives to choose thresholds on")
    k = math.floor(rate * r.size + 1e-9)
    if k >= r.size:
        return 0.0
    floor_value = r[k]  # the cut must lie above this one, or k + 1 negatives reach it
    above = r[r > floor_value]
    upper = float(above.min()) if above.size else 1.0
    return (float(floor_value) + upper) / 2.0


@dataclass(frozen=True)
class RateAt:
    """How many real negatives reach a cut, and the 95 % interval of that share."""

    cut: float
    flagged: int
    n: int
    rate: float
    ci95: tuple[float, float]

    @classmethod
    def measure(cls, neg_risk: np.ndarray, cut: float) -> RateAt:
        """Count the negatives with ``risk >= cut``."""
        n = int(np.asarray(neg_risk).size)
        k = int(np.sum(np.asarray(neg_risk) >= cut))
        return cls(cut=cut, flagged=k, n=n, rate=k / n, ci95=clopper_pearson(k, n))


# The chosen cuts and what they cost on the real negatives they were chosen on.
NegativeThresholds = ThresholdChoice[RateAt]


def thresholds_from_negatives(
    neg_risk: np.ndarray, policy: NegativePolicy | None = None
) -> NegativeThresholds:
    """Choose ``block`` and ``review`` from the risk of held-out real negatives.

    Raises:
        CalibrationError: there are no negatives.
    """
    pol = policy or NegativePolicy()
    block_cut = cut_for_rate(neg_risk, pol.block_rate)
    block = max(block_cut, pol.min_block)
    block_rule = f"lowest cut reached by <= {pol.block_rate:.2%} of real negatives"
    if block != block_cut:
        block_rule += f", raised to min_block (cut was {block_cut:.4f})"
    review_cut = cut_for_rate(neg_risk, pol.review_rate)
    review = min(block, max(review_cut, pol.min_review))
    review_rule = f"lowest cut reached by <= {pol.review_rate:.2%} of real negatives"
    if review != review_cut:
        review_rule += f", kept within [min_review, block] (cut was {review_cut:.4f})"
    return ThresholdChoice.measured(
        (block, review), (block_rule, review_rule), lambda cut: RateAt.measure(neg_risk, cut)
    )
