"""Fitting the int8 fallback band on tuning risks (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from karung.training.errors import ExportError
from karung.training.fallback_fit import (
    FallbackOptions,
    fit_band,
    needed_margin,
    outside_distance,
)
from karung.vision.labels import Thresholds

CUT = Thresholds(block=0.9, review=0.5)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_outside_distance_is_zero_between_the_thresholds() -> None:
    assert outside_distance(0.7, CUT) == 0.0
    assert outside_distance(0.3, CUT) == pytest.approx(-logit(0.3))
    assert outside_distance(0.95, CUT) == pytest.approx(logit(0.95) - logit(0.9))


def test_needed_margin_is_the_widest_miss_among_flipped_decisions() -> None:
    ref = np.array([0.95, 0.6, 0.2, 0.01, 0.99])
    fast = np.array([0.8, 0.3, 0.95, 0.4, 0.999])  # flips: 0 (inside), 1, 2; 3, 4 agree
    assert needed_margin(ref, fast, CUT) == pytest.approx(-logit(0.3))
    assert needed_margin(ref, ref, CUT) == 0.0


def test_fit_band_widens_by_the_safety_factor_and_catches_every_tuning_flip() -> None:
    ref = np.array([0.95, 0.6, 0.2, 0.01, 0.99, 0.05])
    fast = np.array([0.8, 0.3, 0.95, 0.4, 0.999, 0.04])
    fit = fit_band(ref, fast, CUT, FallbackOptions(safety=1.5, floor=0.0))
    assert fit.needed_margin == pytest.approx(-logit(0.3))
    assert fit.margin == pytest.approx(1.5 * -logit(0.3))
    assert fit.int8_agreement == pytest.approx(3 / 6)
    assert fit.guarded_agreement == 1.0
    # In band: 0.8, 0.3, 0.95, 0.4 (low ~0.22, high ~0.96); not 0.999 or 0.04.
    assert fit.band.low == pytest.approx(1 / (1 + math.exp(1.5 * -logit(0.3))))
    assert fit.rechecked_share == pytest.approx(4 / 6)
    assert fit.to_dict()["tuning_rechecked_share"] == fit.rechecked_share


def test_fit_band_floor_applies_when_int8_never_flips() -> None:
    ref = np.array([0.01, 0.99])
    fit = fit_band(ref, ref.copy(), CUT, FallbackOptions(floor=1.0))
    assert fit.needed_margin == 0.0 and fit.margin == 1.0 and fit.rechecked_share == 0.0


def test_fit_band_rejects_bad_input() -> None:
    with pytest.raises(ExportError, match="non-empty"):
        fit_band(np.array([]), np.array([]), CUT)
    with pytest.raises(ExportError, match="matching"):
        fit_band(np.array([0.1]), np.array([0.1, 0.2]), CUT)
    with pytest.raises(ExportError, match="safety"):
        FallbackOptions(safety=0.5)
