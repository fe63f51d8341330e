"""Model-card sections of the frozen recipe: real-negative thresholds, proxies, timings.

Every figure is read from the checkpoint's training record (written by
:mod:`karung.training.headtrain`), so the card cannot drift from the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from karung.vision.checkpoint import Checkpoint

PROXY_NOTE: Final = (
    "None of these is accuracy on real bale photos (the project has none); each is a stand-in "
    "for one way of failing on them. Synthetic validation AUC far above ~0.97 is a sign of "
    "learning the renderer, not of success."
)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f}%"


def _ci(rate: dict[str, Any]) -> str:
    lo, hi = rate["ci95"]
    return f"{_pct(rate['rate'])} ({rate['flagged']} of {rate['n']}; 95% CI {_pct(lo)}-{_pct(hi)})"


def is_frozen(ckpt: Checkpoint) -> bool:
    """Whether the checkpoint was trained by the frozen recipe."""
    return ckpt.training.is_frozen_recipe


def thresholds_lines(ckpt: Checkpoint) -> list[str]:
    """Thresholds chosen on real negatives, with the expected real false-alarm rates."""
    cal = ckpt.training.calibration or {}
    chosen = cal.get("thresholds") or {}
    lines = [
        "## Calibration and thresholds",
        "",
        f"- temperature T = {ckpt.temperature:.4f} (fitted on validation NLL: synthetic "
        "validation images and real photos of validation senders)",
        f"- block: risk >= {ckpt.thresholds.block:.4f} ({chosen.get('block_rule', 'default')})",
        f"- review: risk >= {ckpt.thresholds.review:.4f} ({chosen.get('review_rule', 'default')})",
        f"- chosen on: {cal.get('thresholds_from', 'defaults')} (CC0 garment photos of "
        "validation senders, never used for fitting the head)",
    ]
    if chosen:
        lines += [
            f"- expected real false-block rate: {_ci(chosen['at_block'])}",
            f"- expected real review-or-worse rate: {_ci(chosen['at_review'])}",
            "- these rates are measured on the photos the cuts were chosen on; other real "
            "negatives (shops, warehouses, other products) are harder than single garments, "
            "so expect more there",
        ]
    return [*lines, ""]


def proxies_lines(ckpt: Checkpoint) -> list[str]:
    """The real-photo proxies (leave-one-variant-out AUC, false alarms, domain gap)."""
    proxies = ckpt.training.proxies or {}
    lines = ["## Proxies for real-photo accuracy", "", PROXY_NOTE, ""]
    if not proxies:
        return [*lines, "(not computed for this model)", ""]
    return [*lines, *proxy_table(proxies), *synthetic_lines(ckpt), ""]


def proxy_table(proxies: Mapping[str, Any]) -> list[str]:
    """Markdown table of the proxies (``to_dict`` forms, or ``{"skipped": why}``), then the
    per-family leave-one-variant-out AUCs. Shared by the model card and ``karung evaluate``."""
    lines = ["| proxy | measured | reads as |", "|---|---|---|"]
    fa = proxies.get("real_false_alarms", {})
    if "at_block" in fa:
        lines += [
            f"| real negative photos blocked | {_ci(fa['at_block'])} | honest listings "
            "blocked; target <= 1% |",
            f"| real negative photos sent to review or worse | {_ci(fa['at_review'])} | "
            "moderator load from honest listings; target <= 5% |",
        ]
    gap = proxies.get("domain_gap", {})
    if "balanced_accuracy" in gap:
        lines.append(
            f"| domain gap: linear probe synthetic vs real garments (val senders) | "
            f"{gap['balanced_accuracy']:.3f} balanced accuracy | 0.5 = renderer invisible to "
            "the features; lower is better |"
        )
    lovo = proxies.get("leave_one_variant_out", {})
    if "variants" in lovo:
        lines.append(
            f"| leave-one-variant-out synthetic AUC | mean {lovo['mean_auc']:.4f}, worst "
            f"{lovo['min_auc']:.4f} (`{lovo['min_variant']}`) | a renderer family never seen "
            "in training; higher is better |"
        )
        lines += ["", "Leave-one-variant-out, per held-out family (validation images):", ""]
        lines += ["| family | label | n val | AUC |", "|---|---|---|---|"]
        lines += [
            f"| `{v['variant']}` | {v['label']} | {v['n_val']} | {v['auc']:.4f} |"
            for v in lovo["variants"]
        ]
    skipped = [f"{k}: {v['skipped']}" for k, v in proxies.items()
               if isinstance(v, dict) and "skipped" in v]  # fmt: skip
    return [*lines, *[f"- skipped {s}" for s in skipped]]


def synthetic_lines(ckpt: Checkpoint) -> list[str]:
    """Decisions per label on synthetic validation images at the chosen cuts (a proxy)."""
    val = ckpt.training.val_metrics or {}
    by_label = val.get("decisions_by_label") or {}
    if not by_label:
        return []
    lines = [
        "",
        f"Synthetic validation at these cuts (risk ROC AUC {float(val['risk_roc_auc']):.4f}; "
        "a proxy): garments and others here are the renderer's hard negatives (folded stacks, "
        "strapped and film-wrapped cartons, food sacks), harder than most real listings.",
        "",
        "| label | blocked | review or worse |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {_pct(d['block'])} | {_pct(d['review_or_worse'])} |"
        for name, d in by_label.items()
    ]
    return lines


def training_lines(ckpt: Checkpoint) -> list[str]:
    """How long the frozen recipe took, split into feature extraction and the head fit."""
    timings = ckpt.training.timings or {}
    feats = ckpt.training.features or {}
    if not timings:
        return []
    return [
        f"- training (frozen recipe): {float(timings.get('total_s', 0)):.0f} s wall; features "
        f"{float(timings.get('features_s', 0)):.0f} s ({feats.get('computed', 0)} computed, "
        f"{feats.get('cached', 0)} from the cache `{feats.get('backbone_key', '')}`), head fit "
        f"{float(timings.get('head_fit_s', 0)):.1f} s. A retrain on cached features costs the "
        "head fit plus reading the cache.",
    ]
