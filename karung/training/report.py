"""The evaluation report: matplotlib PNG plots and a Markdown page, for one or two models.

Every plot overlays the compared models so a glance tells which one is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageOps

from karung.training.evaluate import Predictions, worst_cases
from karung.training.metrics import precision_recall_curve, reliability, roc_curve
from karung.vision.probs import RiskHead


@dataclass(frozen=True)
class ModelResult:
    """One evaluated model: its name, predictions and metrics."""

    name: str
    path: str
    model_version: str
    predictions: Predictions
    metrics: dict[str, Any]


def _risk_and_positive(result: ModelResult, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    pred = result.predictions
    head = RiskHead(tuple(labels))
    return head.risk(pred.probs), head.is_risky(pred.labels)


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_roc_pr(results: Sequence[ModelResult], labels: Sequence[str], out: Path) -> list[str]:
    """ROC and precision-recall curves of ``risk`` with the block/review operating points."""
    fig_roc, ax_roc = plt.subplots(figsize=(5, 4.5))
    fig_pr, ax_pr = plt.subplots(figsize=(5, 4.5))
    for r in results:
        risk, pos = _risk_and_positive(r, labels)
        roc = roc_curve(pos, risk)
        ax_roc.plot(roc.x, roc.y, label=f"{r.name} (AUC {r.metrics['risk_roc_auc']:.4f})")
        pr = precision_recall_curve(pos, risk)
        ax_pr.plot(pr.x, pr.y, label=f"{r.name} (AP {r.metrics['risk_average_precision']:.4f})")
        for key, marker in (("at_block", "o"), ("at_review", "s")):
            pt = r.metrics[key]
            ax_roc.plot(pt["fpr"], pt["recall"], marker, color=ax_roc.lines[-1].get_color())
            ax_pr.plot(pt["recall"], pt["precision"], marker, color=ax_pr.lines[-1].get_color())
    ax_roc.set(
        xlabel="false-positive rate (safe flagged)",
        ylabel="recall (bale+sack)",
        title="ROC of risk (o block, s review)",
        xlim=(0, 1),
    )
    # Linear up to 0.1% then logarithmic: the low false-positive region is the one that matters.
    ax_roc.set_xscale("symlog", linthresh=1e-3)
    ax_roc.set_xticks([0, 1e-3, 1e-2, 1e-1, 1], ["0", "0.1%", "1%", "10%", "100%"])
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall of risk", ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    return [_save(fig_roc, out / "roc.png"), _save(fig_pr, out / "pr.png")]


def plot_confusions(results: Sequence[ModelResult], labels: Sequence[str], out: Path) -> str:
    """Row-normalised confusion matrices side by side, annotated with counts."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 4.2), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        counts = np.asarray(r.metrics["confusion"], dtype=np.float64)
        rows = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour)
        ax.set(
            xticks=range(len(labels)),
            yticks=range(len(labels)),
            xticklabels=labels,
            yticklabels=labels,
            xlabel="predicted",
            ylabel="true",
            title=r.name,
        )
    return _save(fig, out / "confusion.png")


def plot_per_label(results: Sequence[ModelResult], labels: Sequence[str], out: Path) -> str:
    """Precision and recall per label, one bar group per label and model."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    width = 0.8 / len(results)
    x = np.arange(len(labels))
    for k, r in enumerate(results):
        for ax, key in zip(axes, ("precision", "recall"), strict=True):
            vals = [r.metrics["per_label"][n][key] for n in labels]
            ax.bar(x + k * width, np.nan_to_num(vals), width, label=r.name)
    for ax, key in zip(axes, ("precision", "recall"), strict=True):
        ax.set(
            xticks=x + width * (len(results) - 1) / 2, xticklabels=labels, title=key, ylim=(0, 1.05)
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, out / "per_label.png")


def plot_reliability(results: Sequence[ModelResult], out: Path) -> str:
    """Reliability diagram of the top label (after temperature scaling) with ECE."""
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for r in results:
        rel = reliability(r.predictions.probs, r.predictions.labels)
        keep = rel.counts > 0
        ax.plot(
            rel.confidence[keep], rel.accuracy[keep], "o-", label=f"{r.name} (ECE {rel.ece:.4f})"
        )
    ax.set(
        xlabel="confidence (max probability)",
        ylabel="accuracy",
        title="reliability",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "reliability.png")


def plot_risk_hist(results: Sequence[ModelResult], labels: Sequence[str], out: Path) -> str:
    """Distribution of risk for safe and risky images, with each model's thresholds."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, r in zip(axes[0], results, strict=True):
        risk, pos = _risk_and_positive(r, labels)
        if (~pos).any():
            ax.hist(risk[~pos], bins=bins, alpha=0.6, label="garment/other")
        if pos.any():
            ax.hist(risk[pos], bins=bins, alpha=0.6, label="bale/sack")
        t = r.metrics["thresholds"]
        ax.axvline(t["block"], color="red", ls="--", label=f"block {t['block']:.3f}")
        ax.axvline(t["review"], color="orange", ls="--", label=f"review {t['review']:.3f}")
        ax.set(yscale="log", xlabel="risk", ylabel="images", title=r.name)
        ax.legend(fontsize=8)
    return _save(fig, out / "risk_hist.png")


def thumbnail_grid(
    result: ModelResult,
    labels: Sequence[str],
    rows: list[int],
    title: str,
    path: Path,
    cols: int = 6,
) -> str | None:
    """A grid of thumbnails captioned with true label and risk; None when ``rows`` is empty."""
    if not rows:
        return None
    risk, _ = _risk_and_positive(result, labels)
    n_rows = -(-len(rows) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(2.1 * cols, 2.7 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), rows, strict=False):
        sample = result.predictions.samples[i]
        try:
            with Image.open(sample.path) as im:
                thumb = ImageOps.exif_transpose(im).convert("RGB")
                thumb.thumbnail((160, 160))
            ax.imshow(thumb)
        except OSError:
            ax.text(0.5, 0.5, "unreadable", ha="center")
        ax.set_title(
            f"{labels[sample.label]} risk {risk[i]:.3f}\n{Path(sample.path).name[:22]}", fontsize=7
        )
    fig.suptitle(title)
    return _save(fig, path)


def write_report(
    results: Sequence[ModelResult], labels: Sequence[str], out: Path, data_desc: str
) -> Path:
    """Write all plots and ``report.md`` into ``out``; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    both = all(r.metrics["both_classes"] for r in results)
    images: list[tuple[str, str]] = []
    if both:
        roc, pr = plot_roc_pr(results, labels, out)
        images += [("ROC of risk", roc), ("Precision-recall of risk", pr)]
    images += [
        ("Risk distribution and thresholds", plot_risk_hist(results, labels, out)),
        ("Confusion matrices (rows: true label)", plot_confusions(results, labels, out)),
        ("Per-label precision and recall", plot_per_label(results, labels, out)),
        ("Reliability diagram", plot_reliability(results, out)),
    ]
    worst: list[tuple[str, str]] = []
    for k, r in enumerate(results):
        cases = worst_cases(r.predictions, labels)
        for key, title in (
            ("false_positives", "highest-risk safe images"),
            ("false_negatives", "lowest-risk bale/sack images"),
        ):
            name = thumbnail_grid(
                r, labels, cases[key], f"{r.name}: {title}", out / f"worst_{key}_{k}.png"
            )
            if name:
                worst.append((f"{r.name}: {title}", name))
    text = _markdown(results, labels, data_desc, images, worst, both)
    path = out / "report.md"
    path.write_text(text)
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:.4f}"
    return str(value)


def summary_rows(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one model, in report order."""
    rows: dict[str, Any] = {
        "images": metrics["n"],
        "accuracy": metrics["accuracy"],
        "ECE (top label)": metrics["ece"],
        "block threshold": metrics["thresholds"]["block"],
        "review threshold": metrics["thresholds"]["review"],
        "share blocked (all)": metrics["decisions"]["block"],
        "share review or worse (all)": metrics["decisions"]["review_or_worse"],
    }
    if metrics["both_classes"]:
        rows["risk ROC AUC"] = metrics["risk_roc_auc"]
        rows["risk average precision"] = metrics["risk_average_precision"]
        for cut in ("block", "review"):
            for figure in ("precision", "recall"):
                rows[f"{figure} at {cut}"] = metrics[f"at_{cut}"][figure]
    if "safe_blocked_share" in metrics:
        rows["safe images blocked"] = metrics["safe_blocked_share"]
        rows["safe images review or worse"] = metrics["safe_review_or_worse_share"]
    return rows


def _markdown(
    results: Sequence[ModelResult],
    labels: Sequence[str],
    data_desc: str,
    images: list[tuple[str, str]],
    worst: list[tuple[str, str]],
    both: bool,
) -> str:
    names = [r.name for r in results]
    table = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    per_model = [summary_rows(r.metrics) for r in results]
    for key in per_model[0]:
        table.append(
            f"| {key} | " + " | ".join(_fmt(m.get(key, float("nan"))) for m in per_model) + " |"
        )
    lines = ["# karung evaluation report", "", f"Data: {data_desc}", ""]
    lines += [f"- **{r.name}**: `{r.path}` (version `{r.model_version}`)" for r in results]
    lines += ["", "## Summary", "", *table, ""]
    if not both:
        lines += [
            "Only safe labels (or only risky ones) are present, so ROC and precision-recall "
            "are undefined; read the blocked / review shares above.",
            "",
        ]
    lines += ["## Per-label precision and recall", ""]
    for r in results:
        lines += [
            f"**{r.name}**",
            "",
            "| label | precision | recall | support |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {n} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {int(v['support'])} |"
            for n, v in r.metrics["per_label"].items()
        ]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({name})\n" for title, name in images]
    lines += ["## Worst cases", ""]
    lines += [f"### {title}\n\n![{title}]({name})\n" for title, name in worst]
    for r in results:
        if r.predictions.unreadable:
            lines += [
                f"{r.name}: {len(r.predictions.unreadable)} unreadable files, e.g. "
                f"`{r.predictions.unreadable[0]}`",
                "",
            ]
    return "\n".join(lines)
