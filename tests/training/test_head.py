"""The linear head and the real-photo proxies, on features made up for the purpose."""

from __future__ import annotations

import numpy as np
import pytest

from karung.training.data import Sample
from karung.training.head import HeadFitError, balanced_weights, fit_linear_head, risk_of
from karung.training.proxies import domain_gap, leave_one_variant_out
from karung.vision.probs import RiskHead

LABELS = ["bale", "sack", "garment", "other"]


def _blobs(seed: int, n: int = 400, dim: int = 16, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(4, dim))
    y = np.arange(n) % 4
    return centres[y] + rng.normal(0, spread, size=(n, dim)), y


def _gradient(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, l2: float) -> np.ndarray:
    """The objective's gradient written out in numpy (independent of torch's autograd)."""
    weights = balanced_weights(y, 4)
    weights = weights / weights.sum()
    z = x @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return (p * weights[:, None]).T @ x + l2 * w


def test_head_reaches_the_optimum_and_separates_blobs() -> None:
    x, y = _blobs(0)
    head = fit_linear_head(x, y, 4, l2=1e-2)
    assert (head.logits(x).argmax(axis=1) == y).mean() > 0.97
    grad = _gradient(x, y, head.weight, head.bias, 1e-2)
    assert np.abs(grad).max() < 1e-5  # stationary point of a strictly convex objective


def test_stronger_l2_gives_a_smaller_head() -> None:
    x, y = _blobs(1)
    norms = [np.linalg.norm(fit_linear_head(x, y, 4, l2=l2).weight) for l2 in (1e-3, 1e-1, 1.0)]
    assert norms[0] > norms[1] > norms[2]


def test_balanced_weights_equalise_labels() -> None:
    y = np.array([0] * 90 + [1] * 10)
    w = balanced_weights(y, 4)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert w.mean() == pytest.approx(1.0)


def test_head_rejects_bad_input() -> None:
    x, y = _blobs(2, n=40)
    with pytest.raises(HeadFitError):
        fit_linear_head(x, np.zeros(40, dtype=int), 4, l2=0.1)
    with pytest.raises(HeadFitError):
        fit_linear_head(x[:10], y, 4, l2=0.1)
    with pytest.raises(HeadFitError):
        fit_linear_head(x, y, 4, l2=-1.0)


def _samples(y: np.ndarray, variants: list[str], splits: list[str]) -> list[Sample]:
    return [
        Sample(path=f"{i}.jpg", label=int(lab), split=s, group="", variant=v)
        for i, (lab, v, s) in enumerate(zip(y, variants, splits, strict=True))
    ]


def test_leave_one_variant_out_exposes_a_variant_unlike_the_others() -> None:
    """Bale variant 'b-near' resembles other bales; 'b-odd' looks like garments except along
    one direction that only it uses, so a head that never saw it cannot tell it apart."""
    rng = np.random.default_rng(3)
    rows, labels, variants = [], [], []
    centres = {
        "b-near": (2, 0, 0),
        "b-near2": (2.2, 0.2, 0),
        "b-odd": (-2, 0, 3),
        "g": (-2, 0, 0),
        "o": (0, -2.5, 0),
    }
    label_of = {"b-near": 0, "b-near2": 0, "b-odd": 0, "g": 2, "o": 3}
    for name, c in centres.items():
        for _ in range(120):
            rows.append(np.array(c) + rng.normal(0, 0.6, 3))
            labels.append(label_of[name])
            variants.append(name)
    x, y = np.array(rows), np.array(labels)
    splits = ["val" if i % 4 == 0 else "train" for i in range(len(y))]
    report = leave_one_variant_out(
        x, _samples(y, variants, splits), LABELS, l2=1e-3, progress=False
    )
    aucs = {v.variant: v.auc for v in report.variants}
    assert set(aucs) == set(centres)
    assert aucs["b-near"] > 0.95
    assert aucs["b-odd"] < 0.8
    assert report.min_variant == "b-odd"
    assert report.min_auc == min(aucs.values())


@pytest.mark.parametrize(("shift", "low", "high"), [(0.0, 0.35, 0.65), (3.0, 0.95, 1.0)])
def test_domain_gap_reads_half_when_indistinguishable(
    shift: float, low: float, high: float
) -> None:
    rng = np.random.default_rng(4)
    n = 400
    real = rng.normal(0, 1, size=(n, 8))
    synth = rng.normal(0, 1, size=(n, 8))
    synth[:, 0] += shift
    x = np.vstack([real, synth])
    y = np.full(2 * n, 2)
    variants = [""] * n + ["garment-flatlay"] * n
    splits = ["val" if i % 3 == 0 else "train" for i in range(2 * n)]
    gap = domain_gap(x, _samples(y, variants, splits), LABELS)
    assert low <= gap.balanced_accuracy <= high


def test_risk_of_is_the_sum_of_the_risky_softmax_columns() -> None:
    x, y = _blobs(5, n=80)
    head = fit_linear_head(x, y, 4, l2=0.1)
    z = head.logits(x).astype(np.float64) / 2.0
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = ("bale", "sack", "garment", "other")
    got = risk_of(head, x, RiskHead(labels, 2.0))
    assert np.allclose(got, p[:, 0] + p[:, 1], atol=1e-5)
