"""Thresholds chosen on real negatives, and their exact binomial intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from karung.training.errors import CalibrationError
from karung.training.negatives import (
    NegativePolicy,
    clopper_pearson,
    cut_for_rate,
    thresholds_from_negatives,
)


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize(("k", "n"), [(0, 100), (1, 100), (5, 40), (40, 40), (3, 1224)])
def test_clopper_pearson_solves_the_binomial_tails(k: int, n: int) -> None:
    lo, hi = clopper_pearson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    if k < n:  # P(X <= k | hi) = 2.5 %
        assert _binom_cdf(k, n, hi) == pytest.approx(0.025, abs=1e-6)
    if k > 0:  # P(X >= k | lo) = 2.5 %
        assert 1.0 - _binom_cdf(k - 1, n, lo) == pytest.approx(0.025, abs=1e-6)


def test_clopper_pearson_known_value_rule_of_three() -> None:
    # 0 of n: the upper bound is 1 - 0.025**(1/n) (about 3.69 / n for large n).
    _, hi = clopper_pearson(0, 1000)
    assert hi == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-6)
    with pytest.raises(CalibrationError):
        clopper_pearson(3, 2)


def _brute_force_cut(risk: np.ndarray, rate: float) -> float:
    """The lowest candidate cut (every midpoint of sorted distinct values) within the rate."""
    values = np.unique(np.concatenate([risk, [1.0]]))
    candidates = (values[:-1] + values[1:]) / 2.0
    allowed = math.floor(rate * risk.size + 1e-9)
    ok = [c for c in candidates if int(np.sum(risk >= c)) <= allowed]
    return float(min(ok))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", [0.0, 0.005, 0.03, 0.2])
def test_cut_for_rate_matches_brute_force(seed: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    # Ties on purpose: rounded risks.
    risk = np.round(rng.beta(0.6, 4.0, size=int(rng.integers(30, 400))), 2)
    cut = cut_for_rate(risk, rate)
    assert cut == pytest.approx(_brute_force_cut(risk, rate))
    assert np.sum(risk >= cut) <= math.floor(rate * risk.size + 1e-9)


def test_thresholds_from_negatives_hold_their_rates_and_floors() -> None:
    rng = np.random.default_rng(0)
    risk = rng.beta(0.5, 6.0, size=2000)
    chosen = thresholds_from_negatives(
        risk, NegativePolicy(block_rate=0.005, review_rate=0.05, min_block=0.0, min_review=0.0)
    )
    assert chosen.review <= chosen.block
    assert chosen.at_block.flagged <= 10 and chosen.at_review.flagged <= 100
    assert chosen.at_block.rate == pytest.approx(np.mean(risk >= chosen.block))
    lo, hi = chosen.at_block.ci95
    assert lo <= chosen.at_block.rate <= hi
    # Floors win over a lenient cut: a weak model never auto-blocks below min_block.
    low = thresholds_from_negatives(risk * 0.1, NegativePolicy(min_block=0.5, min_review=0.2))
    assert low.block == 0.5 and low.review == 0.2
    assert "min_block" in low.block_rule
    with pytest.raises(CalibrationError):
        thresholds_from_negatives(np.array([]))
    with pytest.raises(CalibrationError):
        NegativePolicy(block_rate=0.1, review_rate=0.01)
