"""Score a labelled data set with a checkpoint and compute the evaluation metrics.

Scoring goes through the serving path (same decoding, :class:`Preprocessing`, backend logits
and temperature), so the numbers describe what ``karung score`` will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from karung.training.augment import EvalTransform
from karung.training.data import Sample
from karung.training.errors import DatasetError
from karung.training.loader import UNREADABLE, ImageDataset, make_loader
from karung.training.metrics import (
    average_precision,
    confusion_matrix,
    decision_shares,
    per_label_precision_recall,
    rates_at,
    reliability,
    roc_auc,
)
from karung.vision.backends import InferenceBackend, TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Thresholds
from karung.vision.probs import RiskHead
from karung.vision.probs import risk_indices as risk_indices  # one definition, in vision


@dataclass(frozen=True)
class Predictions:
    """Calibrated probabilities of the readable samples, in sample order."""

    samples: list[Sample]
    probs: np.ndarray
    labels: np.ndarray
    unreadable: list[str]


def predict(
    checkpoint: Checkpoint,
    samples: Sequence[Sample],
    *,
    backend: InferenceBackend | None = None,
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    desc: str = "scoring",
) -> Predictions:
    """Decode, preprocess and score ``samples``; unreadable files are listed, not fatal."""
    if not samples:
        raise DatasetError("nothing to score")
    engine = backend or TorchBackend(checkpoint.build_model())
    prep = checkpoint.preprocessing
    dataset = ImageDataset(samples, EvalTransform(prep), prep.input_size)
    loader = make_loader(dataset, batch_size=batch_size, workers=workers)
    logits: list[np.ndarray] = []
    idx: list[int] = []
    bad: list[int] = []
    with tqdm(total=len(samples), desc=desc, unit="img", disable=not progress) as bar:
        for x, y, index in loader:
            ok = y != UNREADABLE
            bad.extend(int(i) for i in index[~ok])
            if bool(ok.any()):
                logits.append(engine.logits(x[ok].numpy()))
                idx.extend(int(i) for i in index[ok])
            bar.update(len(y))
    if not idx:
        raise DatasetError(f"none of the {len(samples)} images could be decoded")
    kept = [samples[i] for i in idx]
    return Predictions(
        samples=kept,
        probs=checkpoint.risk_head.probs(np.concatenate(logits)),
        labels=np.array([s.label for s in kept], dtype=np.int64),
        unreadable=[samples[i].path for i in bad],
    )


def compute_metrics(
    probs: np.ndarray, labels: np.ndarray, names: Sequence[str], thresholds: Thresholds
) -> dict[str, Any]:
    """All evaluation figures of one model on one data set, as JSON-able data.

    With only safe labels present (e.g. real garment photos) the ranking metrics are undefined;
    the decision shares (how much would be blocked or reviewed) are then the figures to read.
    """
    head = RiskHead(tuple(names))
    risk, positive = head.risk(probs), head.is_risky(labels)
    conf = confusion_matrix(labels, probs.argmax(axis=1), len(names))
    rel = reliability(probs, labels)
    out: dict[str, Any] = {
        "n": int(labels.size),
        "label_counts": {n: int((labels == i).sum()) for i, n in enumerate(names)},
        "accuracy": float((probs.argmax(axis=1) == labels).mean()),
        "confusion": conf.tolist(),
        "per_label": per_label_precision_recall(conf, names),
        "ece": rel.ece,
        "thresholds": thresholds.to_dict(),
        "decisions": decision_shares(risk, thresholds.block, thresholds.review),
        "decisions_by_label": {
            n: decision_shares(risk[labels == i], thresholds.block, thresholds.review)
            for i, n in enumerate(names)
            if (labels == i).any()
        },
        "both_classes": bool(positive.any() and (~positive).any()),
    }
    if out["both_classes"]:
        out["risk_roc_auc"] = roc_auc(positive, risk)
        out["risk_average_precision"] = average_precision(positive, risk)
        out["at_block"] = rates_at(positive, risk, thresholds.block)
        out["at_review"] = rates_at(positive, risk, thresholds.review)
    if (~positive).any():
        neg = decision_shares(risk[~positive], thresholds.block, thresholds.review)
        out["safe_blocked_share"] = neg["block"]
        out["safe_review_or_worse_share"] = neg["review_or_worse"]
    return out


def worst_cases(pred: Predictions, names: Sequence[str], k: int = 12) -> dict[str, list[int]]:
    """Row indices of the highest-risk safe images and the lowest-risk risky images."""
    head = RiskHead(tuple(names))
    risk, positive = head.risk(pred.probs), head.is_risky(pred.labels)
    neg = np.flatnonzero(~positive)
    pos = np.flatnonzero(positive)
    return {
        "false_positives": neg[np.argsort(-risk[neg], kind="mergesort")][:k].tolist(),
        "false_negatives": pos[np.argsort(risk[pos], kind="mergesort")][:k].tolist(),
    }


def torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads (0 leaves the default)."""
    if threads > 0:
        torch.set_num_threads(threads)
