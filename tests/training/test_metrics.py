"""Metric functions against hand-computed cases and their simple reference twins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from karung.training.errors import MetricError
from karung.training.metrics import (
    average_precision,
    confusion_matrix,
    decision_shares,
    ece_reference,
    per_label_precision_recall,
    precision_recall_curve,
    rates_at,
    reliability,
    roc_auc,
    roc_auc_reference,
    roc_curve,
)


def test_roc_auc_hand_computed() -> None:
    # Positives 0.9, 0.4; negatives 0.6, 0.1: pairs won 3 of 4.
    y = [True, True, False, False]
    s = np.array([0.9, 0.4, 0.6, 0.1])
    assert roc_auc(y, s) == pytest.approx(0.75)
    curve = roc_curve(y, s)
    assert curve.x.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert curve.y.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert np.trapezoid(curve.y, curve.x) == pytest.approx(0.75)


def test_roc_auc_ties_count_half() -> None:
    assert roc_auc([True, False], np.array([0.5, 0.5])) == pytest.approx(0.5)
    # pos {0.8, 0.5}, neg {0.5, 0.2}: wins 1 + 1 + 0.5 + 1 = 3.5 of 4.
    assert roc_auc([True, True, False, False], np.array([0.8, 0.5, 0.5, 0.2])) == pytest.approx(
        0.875
    )


def test_roc_auc_matches_reference_on_random_data() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300) + y * 0.3, 2)  # rounding creates many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_reference(y, s), abs=1e-12)
    curve = roc_curve(y, s)
    assert np.trapezoid(curve.y, curve.x) == pytest.approx(roc_auc(y, s), abs=1e-12)


def test_precision_recall_and_average_precision_hand_computed() -> None:
    # Sorted: 0.9 P, 0.8 N, 0.7 P, 0.1 N.
    y = [True, False, True, False]
    s = np.array([0.9, 0.8, 0.7, 0.1])
    curve = precision_recall_curve(y, s)
    assert curve.x.tolist() == [0.5, 0.5, 1.0, 1.0]
    assert curve.y.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    # AP = 0.5 * 1 + 0.5 * 2/3
    assert average_precision(y, s) == pytest.approx(0.5 + 1 / 3)


def test_rates_at_a_cut() -> None:
    y = [True, False, True, False, False]
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.75])
    r = rates_at(y, s, 0.75)
    assert r["precision"] == pytest.approx(1 / 3)
    assert r["recall"] == pytest.approx(0.5)
    assert r["fpr"] == pytest.approx(2 / 3)
    assert r["flagged_share"] == pytest.approx(0.6)
    assert math.isnan(rates_at(y, s, 0.95)["precision"])  # nothing flagged: undefined, not 0


def test_confusion_and_per_label() -> None:
    conf = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    per = per_label_precision_recall(conf, ["a", "b", "c"])
    assert per["a"] == {"precision": 0.5, "recall": 0.5, "support": 2.0}
    assert per["b"]["precision"] == pytest.approx(0.5)
    assert per["c"]["recall"] == pytest.approx(2 / 3)
    with pytest.raises(MetricError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_ece_hand_computed() -> None:
    # Two bins used (n_bins=2): conf 0.9 and 0.8 (right: 1, wrong: 0) -> acc 0.5, conf 0.85;
    # conf 0.4 (right) -> acc 1, conf 0.4. ECE = (2 * 0.35 + 1 * 0.6) / 3.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.3]])
    probs[2] = [0.4, 0.35]  # rows need not sum to 1 for the metric
    labels = np.array([0, 0, 0])
    rel = reliability(probs, labels, n_bins=2)
    assert rel.ece == pytest.approx((2 * 0.35 + 1 * 0.6) / 3)
    assert rel.counts.tolist() == [1, 2]
    assert rel.ece == pytest.approx(ece_reference(probs, labels, n_bins=2))


def test_ece_matches_reference_on_random_data() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(500, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 500)
    assert reliability(probs, labels).ece == pytest.approx(ece_reference(probs, labels), abs=1e-12)


def test_decision_shares() -> None:
    shares = decision_shares(np.array([0.95, 0.6, 0.2, 0.1]), block=0.9, review=0.5)
    assert shares == {"block": 0.25, "review_or_worse": 0.5, "review_only": 0.25}


def test_undefined_inputs_raise_typed_errors() -> None:
    with pytest.raises(MetricError):
        roc_auc([True, True], np.array([0.1, 0.2]))
    with pytest.raises(MetricError):
        roc_auc([True, False], np.array([0.1, np.nan]))
    with pytest.raises(MetricError):
        roc_auc([True], np.array([0.1, 0.2]))
