"""Temperature scaling and the block/review threshold choice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from karung.training.calibrate import (
    choose_thresholds,
    fit_temperature,
    fit_temperature_reference,
    nll,
)
from karung.training.config import ThresholdPolicy
from karung.training.errors import CalibrationError


def _sampled(temperature: float, n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, size=(n, 4))
    z = logits / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_recovers_known_value(true_t: float) -> None:
    logits, labels = _sampled(true_t)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.08)
    assert nll(logits, labels, fitted) <= nll(logits, labels, 1.0) + 1e-12


def test_golden_section_matches_grid_reference() -> None:
    logits, labels = _sampled(1.7, n=1500, seed=3)
    assert fit_temperature(logits, labels) == pytest.approx(
        fit_temperature_reference(logits, labels), rel=0.01
    )


def test_temperature_rejects_bad_input() -> None:
    with pytest.raises(CalibrationError):
        fit_temperature(np.array([[0.0, np.inf]]), np.array([0]))
    with pytest.raises(CalibrationError):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))


def test_thresholds_on_constructed_case() -> None:
    # 100 positives at risk 0.60..0.99, 100 negatives at 0.00..0.495, plus one negative at 0.7.
    pos = np.linspace(0.60, 0.99, 100)
    neg = np.r_[np.linspace(0.0, 0.495, 100), 0.7]
    risk = np.r_[pos, neg]
    positive = np.r_[np.ones(100, bool), np.zeros(101, bool)]
    plain = ThresholdPolicy(min_block=0.0, min_review=0.0, review_ratio=1.0)
    choice = choose_thresholds(risk, positive, plain)
    # Precision at cut 0.6 is 100 / 101 = 0.990099 >= 0.99. Any cut in (0.495, 0.6] flags the
    # same items; the middle of that gap is chosen.
    assert choice.block == pytest.approx((0.6 + 0.495) / 2)
    assert choice.at_block["precision"] == pytest.approx(100 / 101)
    assert choice.at_block["recall"] == 1.0
    # The 95%-recall cut (about 0.618) lies above block: review is clamped down to block.
    assert choice.review == pytest.approx(choice.block)

    strict = choose_thresholds(risk, positive, replace(plain, target_precision=0.999))
    # Precision 0.999 requires rising above the stray negative at 0.7.
    assert strict.block == pytest.approx((pos[pos > 0.7].min() + 0.7) / 2)
    assert strict.at_block["precision"] == 1.0
    # Recall 0.95 needs 95 of 100 positives: cut between the 95th and 96th highest positive.
    assert strict.review == pytest.approx((pos[5] + pos[4]) / 2)
    assert strict.at_review["recall"] == pytest.approx(0.95)

    banded = choose_thresholds(
        risk, positive, replace(plain, target_precision=0.999, review_ratio=0.6)
    )
    assert banded.review == pytest.approx(0.6 * banded.block)


def test_floors_and_fallback() -> None:
    risk = np.array([0.9, 0.3, 0.2, 0.1])
    positive = np.array([False, True, True, False])
    choice = choose_thresholds(risk, positive)  # the top item is safe: 0.99 is unreachable
    assert choice.block == 1.0
    assert choice.block_rule.startswith("fallback")
    easy = choose_thresholds(np.array([0.3, 0.25, 0.1]), np.array([True, True, False]))
    assert easy.block == 0.5  # the mid-gap cut 0.175 is raised to min_block
    assert easy.review == pytest.approx(0.2)  # recall cut 0.175, raised to min_review
    with pytest.raises(CalibrationError):
        choose_thresholds(np.array([0.1, 0.2]), np.array([False, False]))
    with pytest.raises(CalibrationError):
        ThresholdPolicy(min_block=0.1, min_review=0.3)
