"""``karung train``'s default recipe: a linear head on the frozen ImageNet backbone.

1. Pooled 224 px features of every image come from the feature cache, or are computed once
   (:mod:`karung.training.features`).
2. An L2-regularised multinomial logistic head is fitted on the training rows, class-balanced
   (:mod:`karung.training.head`): synthetic bales, sacks, garments and others plus every real
   negative photo given (the CC0 garments of train senders, moderators' exports).
3. The temperature is fitted on all validation rows; ``block`` and ``review`` are chosen on the
   REAL negatives of validation senders (:mod:`karung.training.negatives`), because scores on
   synthetic images do not carry over to real listings.
4. The head becomes MobileNetV2's classifier layer on the untouched ImageNet backbone, so the
   checkpoint, export, int8 gate and serving are those of any other karung model.
5. The proxies of real-photo accuracy are computed (:mod:`karung.training.proxies`).

The run directory gets ``config.json``, ``model.pt`` and ``metrics.json`` with the timings of
each step (a retrain from cached features takes seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from karung.training.calibrate import fit_temperature
from karung.training.config import TrainConfig
from karung.training.data import Sample, label_counts, split_samples
from karung.training.evaluate import compute_metrics
from karung.training.features import FeatureCache, backbone_key, default_cache_dir, extract
from karung.training.head import LinearHead, fit_linear_head
from karung.training.negatives import NegativePolicy, NegativeThresholds, thresholds_from_negatives
from karung.training.proxies import (
    domain_gap,
    leave_one_variant_out,
    real_false_alarms,
    run_proxies,
)
from karung.training.validation import plain
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Thresholds
from karung.vision.modeldir import ModelDir
from karung.vision.preprocess import Preprocessing
from karung.vision.probs import RiskHead, risk_indices
from karung.vision.training_record import TrainingRecord

RECIPE_NAME = "frozen-imagenet-linear-head"


@dataclass(frozen=True)
class FeatureSet:
    """Readable samples and their feature rows, with masks used throughout the recipe."""

    samples: list[Sample]
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    real: np.ndarray
    extraction: dict[str, Any]


def load_features(cfg: TrainConfig, prep: Preprocessing) -> FeatureSet:
    """Split the data, then read or compute the features of every image (unreadable dropped)."""
    train_s, val_s = split_samples(cfg.data, cfg.labels, cfg.val_fraction)
    samples = train_s + val_s
    root = Path(cfg.feature_cache) if cfg.feature_cache else default_cache_dir()
    cache = FeatureCache(root, backbone_key(prep))
    feats = extract(
        [s.path for s in samples],
        cache,
        prep,
        threads=cfg.intra_op_threads,
        progress=cfg.progress,
    )
    kept = [s for s, ok in zip(samples, feats.ok, strict=True) if ok]
    info = {
        "cache": str(cache.folder),
        "backbone_key": backbone_key(prep),
        "computed": feats.computed,
        "cached": feats.cached,
        "unreadable": int((~feats.ok).sum()),
        "seconds": round(feats.seconds, 2),
    }
    return FeatureSet(
        samples=kept,
        x=feats.x[feats.ok],
        y=np.array([s.label for s in kept], dtype=np.int64),
        train=np.array([s.split == "train" for s in kept]),
        val=np.array([s.split == "val" for s in kept]),
        real=np.array([s.is_real for s in kept]),
        extraction=info,
    )


def checkpoint_for(head: LinearHead, labels: tuple[str, ...], **kwargs: Any) -> Checkpoint:
    """The ImageNet MobileNetV2 with ``head`` as its classifier layer, as a checkpoint."""
    import torch

    from karung.vision.model import HEAD_LINEAR, build_model

    model = build_model(len(labels), pretrained=True)
    linear = model.get_submodule(HEAD_LINEAR)
    with torch.no_grad():
        linear.get_parameter("weight").copy_(torch.from_numpy(head.weight.astype(np.float32)))
        linear.get_parameter("bias").copy_(torch.from_numpy(head.bias.astype(np.float32)))
    return Checkpoint.from_model(model.eval(), labels, **kwargs)


def choose_cuts(
    cfg: TrainConfig, fs: FeatureSet, risk: np.ndarray
) -> tuple[Thresholds, NegativeThresholds | None]:
    """Thresholds from the real negatives of validation senders; defaults when there are none."""
    risky = risk_indices(cfg.labels)
    neg = fs.val & fs.real & ~np.isin(fs.y, risky)
    if not neg.any():
        tqdm.write("warning: no real negative photos in validation; keeping default thresholds")
        return Thresholds(), None
    policy = NegativePolicy(
        block_rate=cfg.negatives.block_rate,
        review_rate=cfg.negatives.review_rate,
        min_block=cfg.thresholds.min_block,
        min_review=cfg.thresholds.min_review,
    )
    chosen = thresholds_from_negatives(risk[neg], policy)
    return Thresholds(block=chosen.block, review=chosen.review), chosen


def _proxies(cfg: TrainConfig, fs: FeatureSet, risk: np.ndarray, cut: Thresholds) -> dict[str, Any]:
    """The real-photo proxies; each one is skipped (with the reason) where the data lacks it."""
    labels = list(cfg.labels)
    neg = fs.val & fs.real & ~np.isin(fs.y, risk_indices(labels))
    jobs: dict[str, Callable[[], Any]] = {
        "real_false_alarms": lambda: real_false_alarms(risk[neg], cut.block, cut.review),
        "domain_gap": lambda: domain_gap(fs.x, fs.samples, labels),
        "leave_one_variant_out": lambda: leave_one_variant_out(
            fs.x, fs.samples, labels, l2=cfg.head_l2, progress=cfg.progress
        ),
    }
    return run_proxies(jobs)


def train_frozen(cfg: TrainConfig) -> tuple[Path, dict[str, Any]]:
    """Run the frozen recipe end to end; returns the checkpoint path and its metrics."""
    started = time.perf_counter()
    prep = Preprocessing(input_size=cfg.input_size)
    fs = load_features(cfg, prep)
    counts = _counts(fs, cfg.labels)
    cfg.save(extra={"label_counts": counts, "features": fs.extraction})
    t0 = time.perf_counter()
    head = fit_linear_head(fs.x[fs.train], fs.y[fs.train], len(cfg.labels), l2=cfg.head_l2)
    fit_s = time.perf_counter() - t0
    logits = head.logits(fs.x)
    temperature = fit_temperature(logits[fs.val], fs.y[fs.val])
    risk_head = RiskHead(tuple(cfg.labels), temperature)
    probs = risk_head.probs(logits)
    risk = risk_head.risk(probs)
    cut, chosen = choose_cuts(cfg, fs, risk)
    metrics = _val_metrics(cfg, fs, probs, cut)
    metrics["proxies"] = _proxies(cfg, fs, risk, cut) if cfg.proxies else {}
    timings = {"features_s": fs.extraction["seconds"], "head_fit_s": round(fit_s, 2)}
    timings["total_s"] = round(time.perf_counter() - started, 2)
    metrics["timings"] = timings
    meta = _metadata(cfg, fs, counts, timings, temperature, chosen)
    meta["val_metrics"] = {
        k: metrics.get(k) for k in ("n", "accuracy", "risk_roc_auc", "decisions_by_label")
    }
    ckpt = checkpoint_for(
        head,
        tuple(cfg.labels),
        preprocessing=prep,
        temperature=temperature,
        thresholds=cut,
        thresholds_calibrated=chosen is not None,
        training=TrainingRecord.from_dict(plain({**meta, "proxies": metrics["proxies"]})),
    )
    out = ModelDir(cfg.out_dir)
    path = ckpt.save(out.checkpoint)
    metrics["model_version"] = ckpt.model_version
    out.metrics.write_text(json.dumps(plain(metrics), indent=2) + "\n")
    _summary(metrics, cut, timings, fs)
    return path, metrics


def _counts(fs: FeatureSet, labels: tuple[str, ...]) -> dict[str, Any]:
    """Label counts per split, and how many rows of each split are real photos."""
    picked = {
        name: [s for s, keep in zip(fs.samples, mask, strict=True) if keep]
        for name, mask in (("train", fs.train), ("val", fs.val))
    }
    return {
        "train": label_counts(picked["train"], labels),
        "val": label_counts(picked["val"], labels),
        "real_train": int((fs.real & fs.train).sum()),
        "real_val": int((fs.real & fs.val).sum()),
    }


def _val_metrics(
    cfg: TrainConfig, fs: FeatureSet, probs: np.ndarray, cut: Thresholds
) -> dict[str, Any]:
    """Headline figures on synthetic validation rows (a proxy), or on all of validation when
    the data is real only (e.g. a moderators' export alone); ``real_val`` on the real photos
    of validation senders (negatives, and reviewed positives)."""
    synth_val = fs.val & ~fs.real
    rows = synth_val if synth_val.any() else fs.val
    metrics = compute_metrics(probs[rows], fs.y[rows], cfg.labels, cut)
    metrics["rows"] = "synthetic val" if synth_val.any() else "all val (no synthetic rows)"
    real = fs.val & fs.real
    metrics["real_val"] = (
        compute_metrics(probs[real], fs.y[real], cfg.labels, cut) if real.any() else {}
    )
    return metrics


def _metadata(
    cfg: TrainConfig,
    fs: FeatureSet,
    counts: dict[str, Any],
    timings: dict[str, Any],
    temperature: float,
    chosen: NegativeThresholds | None,
) -> dict[str, Any]:
    """The checkpoint's training record (export and the model card read it)."""
    import torch

    return {
        "recipe": RECIPE_NAME,
        "run_dir": str(cfg.out_dir.resolve()),
        "data": list(cfg.data),
        "val_fraction": cfg.val_fraction,
        "config": cfg.to_dict(),
        "label_counts": counts,
        "features": fs.extraction,
        "timings": timings,
        "wall_seconds": timings["total_s"],
        "calibration": {
            "temperature": temperature,
            "thresholds_from": "real negatives" if chosen else "defaults",
            "thresholds": chosen.to_dict() if chosen else None,
        },
        "torch": str(torch.__version__),
    }


def _summary(
    metrics: dict[str, Any], cut: Thresholds, timings: dict[str, Any], fs: FeatureSet
) -> None:
    ext = fs.extraction
    tqdm.write(
        f"features: {ext['computed']} computed, {ext['cached']} from cache in "
        f"{ext['seconds']:.1f} s; head fit {timings['head_fit_s']:.1f} s; "
        f"total {timings['total_s']:.1f} s"
    )
    real = metrics.get("real_val") or {}
    tqdm.write(
        f"block={cut.block:.4f} review={cut.review:.4f}; synthetic val risk AUC "
        f"{metrics.get('risk_roc_auc', float('nan')):.4f} (a proxy); real val negatives "
        f"blocked {real.get('safe_blocked_share', float('nan')):.2%}, review or worse "
        f"{real.get('safe_review_or_worse_share', float('nan')):.2%}"
    )
