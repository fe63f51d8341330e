"""Per-epoch validation figures and the end-of-run calibration that produces ``model.pt``."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm import tqdm

from karung.training.calibrate import choose_thresholds, fit_temperature, nll
from karung.training.config import TrainConfig
from karung.training.data import Sample
from karung.training.errors import CalibrationError, MetricError
from karung.training.evaluate import compute_metrics
from karung.training.loop import Scored
from karung.training.metrics import reliability, roc_auc
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Thresholds
from karung.vision.modeldir import ModelDir
from karung.vision.preprocess import Preprocessing
from karung.vision.probs import RiskHead
from karung.vision.training_record import TrainingRecord


def val_subset(samples: Sequence[Sample], limit: int, seed: int) -> list[Sample]:
    """A fixed random subset of at most ``limit`` samples (``0``: all), for per-epoch checks."""
    if limit <= 0 or len(samples) <= limit:
        return list(samples)
    picked = random.Random(seed).sample(range(len(samples)), limit)
    return [samples[i] for i in sorted(picked)]


def epoch_metrics(scored: Scored, labels: Sequence[str]) -> dict[str, float]:
    """Validation loss, accuracy and risk ROC AUC (``nan`` when a class is missing)."""
    if scored.labels.size == 0:
        raise MetricError("no readable validation images")
    head = RiskHead(tuple(labels))  # uncalibrated: T is fitted after training
    positive, risk = head.is_risky(scored.labels), head.risk_of_logits(scored.logits)
    try:
        auc = roc_auc(positive, risk)
    except MetricError:
        auc = float("nan")
    return {
        "val_loss": nll(scored.logits, scored.labels, 1.0),
        "val_acc": float((scored.logits.argmax(axis=1) == scored.labels).mean()),
        "risk_roc_auc": auc,
    }


def calibrate(scored: Scored, cfg: TrainConfig) -> tuple[float, Thresholds, bool, dict[str, Any]]:
    """Fit the temperature, then the thresholds on calibrated risk.

    Returns ``(temperature, thresholds, calibrated, report)``; when validation lacks a risky or a
    safe class the default thresholds are kept and ``calibrated`` is False.
    """
    temperature = fit_temperature(scored.logits, scored.labels)
    head = RiskHead(tuple(cfg.labels), temperature)
    probs = head.probs(scored.logits)
    risk, positive = head.risk(probs), head.is_risky(scored.labels)
    report: dict[str, Any] = {
        "temperature": temperature,
        "nll_before": nll(scored.logits, scored.labels, 1.0),
        "nll_after": nll(scored.logits, scored.labels, temperature),
        "ece_before": reliability(head.uncalibrated().probs(scored.logits), scored.labels).ece,
        "ece_after": reliability(probs, scored.labels).ece,
    }
    try:
        choice = choose_thresholds(risk, positive, cfg.thresholds)
    except CalibrationError as exc:
        tqdm.write(f"warning: thresholds not calibrated ({exc}); keeping the defaults")
        report["thresholds_error"] = str(exc)
        return temperature, Thresholds(), False, report
    report["thresholds"] = choice.to_dict()
    return temperature, Thresholds(block=choice.block, review=choice.review), True, report


def finalize(
    cfg: TrainConfig,
    model: nn.Module,
    prep: Preprocessing,
    scored: Scored,
    meta: dict[str, Any],
) -> tuple[Path, dict[str, Any]]:
    """Calibrate on all validation data, save ``model.pt`` and ``metrics.json``."""
    temperature, thresholds, calibrated, report = calibrate(scored, cfg)
    probs = RiskHead(tuple(cfg.labels), temperature).probs(scored.logits)
    metrics = compute_metrics(probs, scored.labels, cfg.labels, thresholds)
    metrics["calibration"] = report
    metrics["unreadable_val"] = int(scored.unreadable.size)
    ckpt = Checkpoint.from_model(
        model,
        tuple(cfg.labels),
        preprocessing=prep,
        temperature=temperature,
        thresholds=thresholds,
        thresholds_calibrated=calibrated,
        training=TrainingRecord.from_dict(
            {**meta, "calibration": plain(report), "val_metrics": _headline(metrics)}
        ),
    )
    out = ModelDir(cfg.out_dir)
    path = ckpt.save(out.checkpoint)
    metrics["model_version"] = ckpt.model_version
    out.metrics.write_text(json.dumps(plain(metrics), indent=2) + "\n")
    tqdm.write(
        f"calibrated: T={temperature:.3f} block={thresholds.block:.4f} "
        f"review={thresholds.review:.4f} risk_auc={metrics.get('risk_roc_auc', float('nan')):.4f}"
        f" -> {path}"
    )
    return path, metrics


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "n",
        "accuracy",
        "ece",
        "risk_roc_auc",
        "risk_average_precision",
        "at_block",
        "at_review",
    )
    return {k: metrics[k] for k in keys if k in metrics}


def plain(value: Any) -> Any:
    """Turn numpy scalars/arrays nested in dicts and lists into JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
