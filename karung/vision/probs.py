"""Calibrated probabilities and risk from logits (numpy only: shared by every backend, by
serving and training, and by torch-free code such as the int8 fallback).

:class:`RiskHead` is the one place logits become probabilities and ``risk``; a checkpoint owns
its head (:attr:`karung.vision.checkpoint.Checkpoint.risk_head`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from karung.vision.labels import RISK_LABELS, Decision, Thresholds


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax over the last axis, after dividing by ``temperature``."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def risk_indices(labels: Sequence[str], risk_labels: Collection[str] = RISK_LABELS) -> list[int]:
    """Indices of the risky labels (bale, sack) in ``labels``."""
    return [i for i, name in enumerate(labels) if name in risk_labels]


@dataclass(frozen=True)
class RiskHead:
    """Labels, calibration temperature and risk labels: logits -> probabilities -> risk.

    ``risk`` is the sum of the float32 probabilities of the risk labels (``P(bale) +
    P(sack)``), the number every decision, report and parity check compares with thresholds.
    """

    labels: tuple[str, ...]
    temperature: float = 1.0
    risk_labels: frozenset[str] = RISK_LABELS

    @property
    def risk_indices(self) -> tuple[int, ...]:
        """Indices of the risk labels, in output order."""
        return tuple(risk_indices(self.labels, self.risk_labels))

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated float32 probabilities ``(N, L)`` of logits ``(N, L)``."""
        return softmax(logits, self.temperature)

    def risk(self, probs: np.ndarray) -> np.ndarray:
        """``risk`` per row of a probability matrix."""
        return np.asarray(probs[:, list(self.risk_indices)].sum(axis=1))

    def risk_of_logits(self, logits: np.ndarray) -> np.ndarray:
        """``risk`` of raw logits (softmax at the temperature, then the risk labels' sum)."""
        return self.risk(self.probs(logits))

    def is_risky(self, label_ids: np.ndarray) -> np.ndarray:
        """Boolean mask of the integer labels that are risk labels."""
        return np.isin(label_ids, list(self.risk_indices))

    def decisions(self, risks: np.ndarray, thresholds: Thresholds) -> list[Decision]:
        """The decision ``thresholds`` give each risk."""
        return [thresholds.decide(float(r)) for r in risks]

    def uncalibrated(self) -> RiskHead:
        """The same head at temperature 1 (raw softmax: what training sees before fitting T)."""
        return RiskHead(self.labels, 1.0, self.risk_labels)
