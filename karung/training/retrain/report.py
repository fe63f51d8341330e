"""The Markdown comparison report of a retrain (``RUN/report.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from karung.training.retrain.compare import Comparison
from karung.vision.checkpoint import Checkpoint
from karung.vision.lineage import Lineage

RULE = (
    "**Gate rule.** The challenger is promoted only when it is at least as good as the champion "
    "on every guarded metric: for each metric the paired bootstrap (the same resampled held-out "
    "rows score both models; positives and negatives resampled separately) gives the "
    "challenger's improvement, and its one-sided 95 % lower bound (5th percentile) must be above "
    "minus the metric's non-inferiority margin. `--dry-run` promotes nothing; `--force` promotes "
    "a refused challenger and says so in the lineage and the audit log.\n\n"
    "**Caveat.** Both models chose their cuts on the real CC0 negatives of validation senders "
    "(the champion when it was trained, the challenger now), so their false-block rates on those "
    "rows are in-sample; on the reviewed negatives of held-out sellers they are not."
)


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"


def _table(comparison: Comparison) -> list[str]:
    lines = [
        "| metric | champion (95% CI) | challenger (95% CI) | improvement | lower 95% | margin "
        "| passed |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in comparison.metrics:
        lines.append(
            f"| {m.metric} | {_fmt(m.champion)} ({_fmt(m.champion_ci95[0])}-"
            f"{_fmt(m.champion_ci95[1])}) | {_fmt(m.challenger)} ({_fmt(m.challenger_ci95[0])}-"
            f"{_fmt(m.challenger_ci95[1])}) | {m.improvement:+.4f} | "
            f"{m.improvement_lower95:+.4f} | {m.margin:.4f} | {'yes' if m.passed else 'NO'} |"
        )
    return lines


def write_report(
    path: Path,
    champion: Checkpoint,
    challenger: Checkpoint,
    comparison: Comparison,
    lineage: Lineage,
    export_error: str,
    summary: dict[str, Any],
) -> Path:
    """Write the report and return its path."""
    verdict = "PASSED" if comparison.passed and not export_error else "REFUSED"
    data = summary.get("data", {})
    lines = [
        "# Retrain: champion against challenger",
        "",
        f"- champion: `{champion.model_version}` (block {champion.thresholds.block:.4f}, "
        f"review {champion.thresholds.review:.4f})",
        f"- challenger: `{challenger.model_version}` (block {challenger.thresholds.block:.4f}, "
        f"review {challenger.thresholds.review:.4f})",
        f"- gate: **{verdict}**",
        f"- held-out rows: {comparison.positives} reviewed positives, {comparison.negatives} "
        "real negatives (reviewed garments/others of held-out sellers + CC0 validation senders)",
        f"- data: {data.get('labelled_rows', 0)} labelled rows ({data.get('labelled_train', 0)} "
        f"train, {data.get('labelled_held_out', 0)} held out, split by seller), "
        f"{data.get('base_rows', 0)} base rows; labelled set sha256 "
        f"`{str(data.get('labelled_sha256', ''))[:16]}`, of which {data.get('reviewed_rows', 0)} "
        f"reviewed rows, sha256 `{str(data.get('reviewed_sha256', ''))[:16]}`; "
        f"synthetic seed {lineage.synth_seed}",
        f"- wall time: {summary.get('seconds', 0)} s ({summary.get('stages', {})})",
        "",
        *_table(comparison),
        "",
        RULE,
        "",
    ]
    reasons = comparison.reasons() + ([f"export/parity: {export_error}"] if export_error else [])
    if reasons:
        lines += ["## Why it was refused", "", *[f"- {r}" for r in reasons], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
