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
from karung.training.errors import KarungTrainingError
from karung.training.evaluate import Predictions, risk_indices
from karung.training.features import FeatureCache, backbone_key, default_cache_dir, extract
from karung.training.proxies import domain_gap, leave_one_variant_out, real_false_alarms
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Thresholds

DEFAULT_L2 = 0.1


def model_false_alarms(
    pred: Predictions, names: tuple[str, ...], cut: Thresholds
) -> dict[str, Any]:
    """Real negatives of the scored rows reaching review and block (or why not computed)."""
    real = np.array([s.is_real for s in pred.samples])
    neg = real & ~np.isin(pred.labels, risk_indices(names))
    if not neg.any():
        return {"skipped": "no real negative photos among the evaluated rows"}
    risk = pred.probs[:, risk_indices(names)].sum(axis=1)
    return real_false_alarms(risk[neg], cut.block, cut.review).to_dict()


def data_proxies(
    data: tuple[str, ...], ckpt: Checkpoint, *, threads: int = 2, progress: bool = True
) -> dict[str, Any]:
    """Domain gap and leave-one-variant-out AUC of ``data`` (every split), on cached features."""
    cfg = ckpt.training.get("config") or {}
    l2 = float(cfg.get("head_l2", DEFAULT_L2))
    samples = load_samples(data, ckpt.labels, float(ckpt.training.get("val_fraction", 0.2)))
    prep = ckpt.preprocessing
    cache = FeatureCache(Path(default_cache_dir()), backbone_key(prep))
    feats = extract([s.path for s in samples], cache, prep, threads=threads, progress=progress)
    kept = [s for s, ok in zip(samples, feats.ok, strict=True) if ok]
    x = feats.x[feats.ok]
    out: dict[str, Any] = {"head_l2": l2}
    jobs: dict[str, Callable[[], Any]] = {
        "domain_gap": lambda: domain_gap(x, kept, list(ckpt.labels)),
        "leave_one_variant_out": lambda: leave_one_variant_out(
            x, kept, list(ckpt.labels), l2=l2, progress=progress
        ),
    }
    for name, job in jobs.items():
        try:
            out[name] = job().to_dict()
        except KarungTrainingError as exc:
            out[name] = {"skipped": str(exc)}
    return out


def proxy_lines(proxies: dict[str, Any], false_alarms: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines for the evaluation report."""
    lines = ["", "## Proxies for real-photo accuracy", ""]
    for name, fa in false_alarms.items():
        if "at_block" in fa:
            b, r = fa["at_block"], fa["at_review"]
            lines.append(
                f"- {name}: real negatives blocked {b['rate']:.2%} ({b['flagged']}/{b['n']}, "
                f"95% CI {b['ci95'][0]:.2%}-{b['ci95'][1]:.2%}); review or worse "
                f"{r['rate']:.2%} ({r['flagged']}/{r['n']})"
            )
        else:
            lines.append(f"- {name}: false alarms skipped ({fa.get('skipped')})")
    gap = proxies.get("domain_gap", {})
    if "balanced_accuracy" in gap:
        lines.append(
            f"- domain gap (synthetic vs real garments, linear probe on frozen ImageNet "
            f"features, val senders): {gap['balanced_accuracy']:.3f} (0.5 = none; lower is "
            "better)"
        )
    lovo = proxies.get("leave_one_variant_out", {})
    if "variants" in lovo:
        lines.append(
            f"- leave-one-variant-out AUC (frozen recipe, l2 {proxies['head_l2']}): mean "
            f"{lovo['mean_auc']:.4f}, worst {lovo['min_auc']:.4f} (`{lovo['min_variant']}`)"
        )
        lines += [
            f"  - `{v['variant']}` ({v['label']}, {v['n_val']} val): {v['auc']:.4f}"
            for v in lovo["variants"]
        ]
    lines += [
        f"- {k} skipped: {v['skipped']}"
        for k, v in proxies.items()
        if isinstance(v, dict) and "skipped" in v
    ]
    return lines
