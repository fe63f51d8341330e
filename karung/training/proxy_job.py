"""``karung evaluate --proxies``: the real-photo proxies for any model on any labelled data.

* real false alarms are the evaluated model's own: the share of the data's real negative
  photos (rows without a synthetic ``variant``) it sends to review and to block;
* the domain gap and leave-one-variant-out AUC belong to the data and the frozen recipe: they
  are computed on cached frozen ImageNet features of every row of the data (all splits), with
  the model's head L2 when it was trained by the frozen recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from karung.training.data import load_samples
from karung.training.evaluate import Predictions
from karung.training.features import FeatureCache, backbone_key, default_cache_dir, extract
from karung.training.proxies import (
    domain_gap,
    leave_one_variant_out,
    real_false_alarms,
    run_proxies,
)
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Thresholds
from karung.vision.probs import RiskHead

DEFAULT_L2 = 0.1


def model_false_alarms(
    pred: Predictions, names: tuple[str, ...], cut: Thresholds
) -> dict[str, Any]:
    """Real negatives of the scored rows reaching review and block (or why not computed)."""
    real = np.array([s.is_real for s in pred.samples])
    head = RiskHead(names)
    neg = real & ~head.is_risky(pred.labels)
    if not neg.any():
        return {"skipped": "no real negative photos among the evaluated rows"}
    risk = head.risk(pred.probs)
    return real_false_alarms(risk[neg], cut.block, cut.review).to_dict()


def data_proxies(
    data: tuple[str, ...], ckpt: Checkpoint, *, threads: int = 2, progress: bool = True
) -> dict[str, Any]:
    """Domain gap and leave-one-variant-out AUC of ``data`` (every split), on cached features."""
    cfg = ckpt.training.config or {}
    l2 = float(cfg.get("head_l2", DEFAULT_L2))
    samples = load_samples(data, ckpt.labels, ckpt.training.val_fraction)
    prep = ckpt.preprocessing
    cache = FeatureCache(Path(default_cache_dir()), backbone_key(prep))
    feats = extract([s.path for s in samples], cache, prep, threads=threads, progress=progress)
    kept = [s for s, ok in zip(samples, feats.ok, strict=True) if ok]
    x = feats.x[feats.ok]
    jobs: dict[str, Callable[[], Any]] = {
        "domain_gap": lambda: domain_gap(x, kept, list(ckpt.labels)),
        "leave_one_variant_out": lambda: leave_one_variant_out(
            x, kept, list(ckpt.labels), l2=l2, progress=progress
        ),
    }
    return {"head_l2": l2, **run_proxies(jobs)}


def proxy_lines(proxies: dict[str, Any], false_alarms: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown for the evaluation report: one proxy table per evaluated model."""
    from karung.training.card_sections import PROXY_NOTE, proxy_table

    lines = ["", "## Proxies for real-photo accuracy", "", PROXY_NOTE]
    for name, alarms in false_alarms.items():
        lines += ["", f"### {name} (head L2 {proxies['head_l2']} for the refits)", ""]
        lines += proxy_table({**proxies, "real_false_alarms": alarms})
    return lines
