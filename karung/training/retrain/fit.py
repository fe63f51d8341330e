"""Fit the challenger's classifier layer on base + reviewed features (seconds).

Rows: the base set's training rows (synthetic, real CC0 negatives of training senders) and the
training-split rows of the labelled folders (moderators' decisions, other archives). Real labels
carry far more signal than synthetic ones, so each labelled row weighs ``labelled_weight`` times
a base row (on top of class balancing). The head warm-starts from the champion's, the
temperature is fitted on the validation rows, and ``block``/``review`` are chosen on held-out real
negatives as ``karung train`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from karung.training.calibrate import fit_temperature
from karung.training.head import LinearHead, balanced_weights, fit_linear_head
from karung.training.negatives import NegativePolicy, NegativeThresholds, thresholds_from_negatives
from karung.vision.labels import Thresholds
from karung.vision.probs import RiskHead


@dataclass(frozen=True)
class Rows:
    """Feature rows with labels; ``labelled`` marks rows of the labelled folders."""

    x: np.ndarray
    y: np.ndarray
    labelled: np.ndarray


@dataclass(frozen=True)
class FitOptions:
    """How the challenger is fitted."""

    l2: float = 0.1
    labelled_weight: float = 10.0
    shuffle_labels: bool = False  # gate check: a deliberately worse challenger
    seed: int = 0
    policy: NegativePolicy = field(default_factory=NegativePolicy)


@dataclass(frozen=True)
class Fitted:
    """The challenger's head, temperature and cuts."""

    head: LinearHead
    temperature: float
    thresholds: Thresholds
    chosen: NegativeThresholds | None


def fit_challenger(
    train: Rows,
    val: Rows,
    neg_for_cuts: np.ndarray,
    risk_head: RiskHead,
    opts: FitOptions,
    init: LinearHead | None,
    fallback: Thresholds,
) -> Fitted:
    """Fit head and temperature, then choose the cuts on ``neg_for_cuts`` (feature rows)."""
    y = train.y.copy()
    if opts.shuffle_labels:
        y = np.random.default_rng(opts.seed).permutation(y)
    num_labels = len(risk_head.labels)
    weight = balanced_weights(y, num_labels)
    weight = weight * np.where(train.labelled, opts.labelled_weight, 1.0)
    head = fit_linear_head(
        train.x,
        y,
        num_labels,
        l2=opts.l2,
        sample_weight=weight,
        init=None if opts.shuffle_labels else init,
    )
    temperature = fit_temperature(head.logits(val.x), val.y) if np.unique(val.y).size > 1 else 1.0
    if neg_for_cuts.shape[0] == 0:
        return Fitted(head, temperature, fallback, None)
    risk = replace(risk_head, temperature=temperature).risk_of_logits(head.logits(neg_for_cuts))
    chosen = thresholds_from_negatives(risk, opts.policy)
    return Fitted(head, temperature, Thresholds(block=chosen.block, review=chosen.review), chosen)


def risk_with(
    weight: np.ndarray, bias: np.ndarray, risk_head: RiskHead, x: np.ndarray
) -> np.ndarray:
    """``P(bale) + P(sack)`` of feature rows under a linear head and ``risk_head``."""
    return risk_head.risk_of_logits(np.asarray(x @ weight.T + bias, dtype=np.float32))
