"""Evaluation metrics in plain numpy: ROC, precision-recall, confusion, calibration.

Every fast function has a deliberately simple ``*_reference`` twin (loops, no cleverness) used by
the parity tests. Scores are "higher means more positive"; ties are handled like scikit-learn:
all items sharing a score are cut together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from karung.training.errors import MetricError


@dataclass(frozen=True)
class Curve:
    """A curve swept over score cuts, in order of decreasing cut (``scores >= cut`` positive)."""

    x: np.ndarray
    y: np.ndarray
    cuts: np.ndarray


def _binary_inputs(
    y_true: Sequence[bool] | np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise MetricError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise MetricError("no samples")
    if not np.all(np.isfinite(s)):
        raise MetricError("scores contain NaN or infinity")
    return y, s


def _need_both(y: np.ndarray) -> None:
    if y.all() or not y.any():
        raise MetricError("need both positive and negative samples")


def cumulative_counts(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """True and false positives at every distinct cut, cuts decreasing.

    Returns ``(tp, fp, cuts)`` where entry ``i`` counts the items with ``score >= cuts[i]``.
    """
    y, s = _binary_inputs(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: the cut includes the whole tie group.
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return tp.astype(np.int64), fp.astype(np.int64), s_sorted[last]


def roc_curve(y_true: Sequence[bool] | np.ndarray, scores: np.ndarray) -> Curve:
    """False-positive rate (x) against true-positive rate (y), starting at (0, 0)."""
    y, s = _binary_inputs(y_true, scores)
    _need_both(y)
    tp, fp, cuts = cumulative_counts(y, s)
    fpr = np.r_[0.0, fp / (~y).sum()]
    tpr = np.r_[0.0, tp / y.sum()]
    return Curve(x=fpr, y=tpr, cuts=np.r_[np.inf, cuts])


def roc_auc(y_true: Sequence[bool] | np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) statistic, ties counted half."""
    y, s = _binary_inputs(y_true, scores)
    _need_both(y)
    ranks = _average_ranks(s)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], sorted_vals.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc_reference(y_true: Sequence[bool] | np.ndarray, scores: np.ndarray) -> float:
    """Pairwise definition: P(score_pos > score_neg) + 0.5 P(tie). Quadratic, for tests."""
    y, s = _binary_inputs(y_true, scores)
    _need_both(y)
    wins = 0.0
    for p in s[y]:
        for n in s[~y]:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (y.sum() * (~y).sum())


def precision_recall_curve(y_true: Sequence[bool] | np.ndarray, scores: np.ndarray) -> Curve:
    """Recall (x) against precision (y) at every distinct cut, cuts decreasing."""
    y, s = _binary_inputs(y_true, scores)
    if not y.any():
        raise MetricError("need at least one positive sample")
    tp, fp, cuts = cumulative_counts(y, s)
    return Curve(x=tp / y.sum(), y=tp / (tp + fp), cuts=cuts)


def average_precision(y_true: Sequence[bool] | np.ndarray, scores: np.ndarray) -> float:
    """Step-wise area under the precision-recall curve (sum of precision x recall increments)."""
    curve = precision_recall_curve(y_true, scores)
    recall_steps = np.diff(np.r_[0.0, curve.x])
    return float(np.sum(recall_steps * curve.y))


def rates_at(
    y_true: Sequence[bool] | np.ndarray, scores: np.ndarray, cut: float
) -> dict[str, float]:
    """Precision, recall and false-positive rate of the rule ``score >= cut``.

    Undefined ratios (no positives, nothing flagged) are reported as ``nan``, never as 0.
    """
    y, s = _binary_inputs(y_true, scores)
    flagged = s >= cut
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return {
        "cut": float(cut),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / n_pos if n_pos else float("nan"),
        "fpr": fp / n_neg if n_neg else float("nan"),
        "flagged_share": float(flagged.mean()),
    }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Counts with rows = true label, columns = predicted label."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise MetricError(f"true and predicted differ in length: {t.size} vs {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_labels):
        raise MetricError(f"label index outside [0, {num_labels})")
    return np.bincount(t * num_labels + p, minlength=num_labels * num_labels).reshape(
        num_labels, num_labels
    )


def per_label_precision_recall(
    confusion: np.ndarray, labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall and support per label from a confusion matrix (``nan`` if undefined)."""
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(labels):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        support = float(confusion[i, :].sum())
        out[name] = {
            "precision": tp / predicted if predicted else float("nan"),
            "recall": tp / support if support else float("nan"),
            "support": support,
        }
    return out


@dataclass(frozen=True)
class Reliability:
    """Per-bin mean confidence, accuracy and count of a reliability diagram, plus the ECE."""

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    ece: float


def reliability(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> Reliability:
    """Top-label calibration: bins of max probability vs how often the argmax was right.

    ECE is the count-weighted mean of ``|accuracy - confidence|`` over equal-width bins; bins
    are closed on the right, so a confidence of exactly 1.0 falls in the last bin.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).ravel()
    if p.ndim != 2 or p.shape[0] != t.size or t.size == 0:
        raise MetricError(f"need (N, L) probabilities for N labels, got {p.shape} and {t.size}")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / counts
    gaps = np.where(counts > 0, np.abs(accuracy - mean_conf), 0.0)
    ece = float(np.sum(gaps * counts) / t.size)
    return Reliability(edges, mean_conf, accuracy, counts, ece)


def ece_reference(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Loop-per-sample ECE with the same binning as :func:`reliability`, for tests."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).ravel()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins: list[list[tuple[float, float]]] = [[] for _ in range(n_bins)]
    for row, label in zip(p, t, strict=True):
        conf = float(row.max())
        b = n_bins - 1
        for k in range(n_bins):
            if conf <= edges[k + 1]:
                b = k
                break
        bins[b].append((conf, 1.0 if int(row.argmax()) == int(label) else 0.0))
    total = 0.0
    for items in bins:
        if items:
            c = sum(x for x, _ in items) / len(items)
            a = sum(y for _, y in items) / len(items)
            total += len(items) * abs(a - c)
    return total / len(t)


def decision_shares(risk: np.ndarray, block: float, review: float) -> dict[str, float]:
    """Share of items that would be blocked, and blocked-or-reviewed, under the thresholds."""
    r = np.asarray(risk, dtype=np.float64).ravel()
    if r.size == 0:
        raise MetricError("no samples")
    return {
        "block": float((r >= block).mean()),
        "review_or_worse": float((r >= review).mean()),
        "review_only": float(((r >= review) & (r < block)).mean()),
    }
