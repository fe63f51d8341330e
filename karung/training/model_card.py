"""Write ``MODEL_CARD.md`` for a trained model from its run directory and evaluation outputs.

Usage::

    python -m karung.training.model_card --run runs/default --out models/default/MODEL_CARD.md \\
        --synth-eval reports/default-synth --real-eval reports/default-cc0 \\
        --bench reports/bench.json --synth-command "karung synth --out data/synth --n 24000"

Every figure is read from files the pipeline wrote (``config.json``, ``history.jsonl``, the
checkpoint, ``metrics.json`` of ``karung evaluate``, ``parity.json``, the bench JSON); nothing
is typed in by hand, so the card cannot drift from the model it describes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from karung.training import card_sections
from karung.training.card_commands import qat_command, search_flag, shown, train_command
from karung.training.config import TrainConfig
from karung.training.errors import KarungTrainingError
from karung.vision.checkpoint import Checkpoint
from karung.vision.modeldir import METRICS_FILE, ModelDir

KNOWN_LIMITS: Final = (
    "No real photo of a used-clothing bale or sack was used for training, calibration or "
    "validation: the risky classes are entirely synthetic. Figures on synthetic validation data "
    "are proxies, not accuracy on real listings.",
    "The block/review thresholds were chosen on real CC0 garment photos of validation senders "
    "(frozen recipe): they bound false alarms on honest single-garment listings, not recall on "
    "real bales. Platforms should re-check them on their own labelled listings and may pass "
    "stricter per-client thresholds.",
    "Real negatives are CC0 single-garment product photos; other safe content (shop interiors, "
    "laundry piles, furniture, textiles on rolls) is only represented synthetically and may be "
    "flagged more often.",
    "Photos with heavy overlays, collages or screenshots of listings were not evaluated.",
    "Inputs are squashed to a square; extreme aspect ratios distort objects.",
)


@dataclass(frozen=True)
class CardInputs:
    """Where the card's figures come from."""

    run_dir: Path
    model_dir: Path
    synth_eval: Path | None = None
    real_eval: Path | None = None
    bench: Path | None = None
    synth_command: str = ""
    data_description: str = ""
    notes: Path | None = None


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    file = path / METRICS_FILE if path.is_dir() else path
    if not file.is_file():
        raise KarungTrainingError(f"model card: {file} does not exist")
    data: dict[str, Any] = json.loads(file.read_text())
    return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f}%"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _eval_metrics(report: dict[str, Any] | None) -> dict[str, Any] | None:
    return report["models"][0]["metrics"] if report else None


def _files_section(inp: CardInputs, ckpt: Checkpoint) -> list[str]:
    lines = ["## Files", "", "| file | size | sha256 |", "|---|---|---|"]
    model_dir = ModelDir(inp.model_dir)
    for path in (model_dir.checkpoint, model_dir.int8_onnx, model_dir.fp32_onnx):
        if path.is_file():
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            lines.append(f"| `{path.name}` | {size} | `{_sha256(path)[:16]}...` |")
    lines += [
        "",
        f"Model version `{ckpt.model_version}`; labels {', '.join(ckpt.labels)}; "
        f"input {ckpt.preprocessing.input_size} px (whole photo squashed to a square).",
        "",
    ]
    return lines


def _reproduce_section(
    inp: CardInputs,
    cfg: TrainConfig,
    ckpt: Checkpoint,
    eval_cmds: list[str],
    parity: dict[str, Any] | None = None,
) -> list[str]:
    model = shlex.quote(str(inp.model_dir))
    qat = ckpt.training.qat
    final_run = ModelDir(Path(qat["out"]) if qat else Path(cfg.out))
    if qat:  # the training run is the one the fine-tuning started from
        cfg = replace(cfg, out=str(qat["model"]))
    lines = ["## Reproduce", "", "```sh"]
    if inp.synth_command:
        lines.append(inp.synth_command)
    lines += [
        train_command(cfg),
        *([qat_command(qat)] if qat else []),
        f"mkdir -p {model} && cp {shlex.quote(shown(str(final_run.checkpoint)))} {model}/",
        f"karung export --model {model} --format onnx --int8{search_flag(parity)}",
        *eval_cmds,
        "```",
        "",
    ]
    return lines


def _data_section(inp: CardInputs, resolved: dict[str, Any]) -> list[str]:
    counts = resolved.get("label_counts", {})
    lines = ["## Data", ""]
    if inp.data_description:
        lines += [inp.data_description, ""]
    for split in ("train", "val"):
        if split in counts:
            total = sum(counts[split].values())
            parts = ", ".join(f"{k} {v}" for k, v in counts[split].items())
            lines.append(f"- {split}: {total} images ({parts})")
    lines += [
        "- validation holds out whole senders/scenes (sender-level split), so no scene "
        "straddles train and validation.",
        "",
    ]
    return lines


def _row(figure: str, target: str, value: str) -> str:
    return f"| {figure} | {target} | {value} |"


def _metrics_section(synth: dict[str, Any] | None, real: dict[str, Any] | None) -> list[str]:
    lines = ["## Metrics", "", "| figure | target | measured |", "|---|---|---|"]
    if synth:
        block, review = synth.get("at_block", {}), synth.get("at_review", {})
        lines += [
            _row("synthetic val: risk ROC AUC", "proxy only", _num(synth.get("risk_roc_auc"))),
            _row("synthetic val: risk average precision", "",
                 _num(synth.get("risk_average_precision"))),
            _row("synthetic val: precision at block", "", _num(block.get("precision"))),
            _row("synthetic val: recall at block", "", _num(block.get("recall"))),
            _row("synthetic val: recall at review", "", _num(review.get("recall"))),
            _row("synthetic val: 4-label accuracy", "", _num(synth.get("accuracy"))),
            _row("synthetic val: ECE (top label)", "", _num(synth.get("ece"))),
            _row("synthetic val: safe images blocked", "", _pct(synth.get("safe_blocked_share"))),
        ]  # fmt: skip
    if real:
        lines += [
            _row(f"real CC0 garments (held-out senders, n={real['n']}): blocked", "<= 1%",
                 _pct(real.get("safe_blocked_share"))),
            _row("real CC0 garments: review or worse", "<= 5%",
                 _pct(real.get("safe_review_or_worse_share"))),
        ]  # fmt: skip
    if not synth and not real:
        lines.append(_row("(no evaluation given)", "", ""))
    return [*lines, ""]


def _thresholds_section(ckpt: Checkpoint) -> list[str]:
    if card_sections.is_frozen(ckpt):
        return card_sections.thresholds_lines(ckpt) + card_sections.proxies_lines(ckpt)
    cal = ckpt.training.calibration or {}
    choice = cal.get("thresholds", {})
    lines = [
        "## Calibration and thresholds",
        "",
        f"- temperature T = {ckpt.temperature:.4f} (fitted on validation NLL; ECE "
        f"{_num(cal.get('ece_before'))} -> {_num(cal.get('ece_after'))})",
        f"- block: risk >= {ckpt.thresholds.block:.4f} ({choice.get('block_rule', 'default')})",
        f"- review: risk >= {ckpt.thresholds.review:.4f} ({choice.get('review_rule', 'default')})",
        f"- calibrated: {ckpt.thresholds_calibrated}",
        "",
    ]
    return lines


def _speed_section(
    bench: dict[str, Any] | None, ckpt: Checkpoint, parity: dict[str, Any] | None
) -> list[str]:
    lines = ["## Speed and export", ""]
    seconds = ckpt.training.seconds
    if card_sections.is_frozen(ckpt):
        lines += card_sections.training_lines(ckpt)
    elif seconds is not None:
        lines.append(
            f"- training: {float(seconds) / 60:.1f} min wall for "
            f"{ckpt.training.epochs_run} epochs "
            f"({(ckpt.training.precision or {}).get('reason', '')})"
        )
    qat = ckpt.training.qat
    if qat:
        total = float(seconds or 0) + float(qat["seconds"])
        lines.append(
            f"- quantisation-aware fine-tuning: {float(qat['seconds']) / 60:.1f} min wall for "
            f"{qat['steps']} steps of {qat['batch_size']} images; training in all "
            f"{total / 60:.1f} min"
        )
    for kind, report in (parity or {}).items():
        lines += _parity_lines(kind, report)
    if bench:
        lines += [
            "",
            f"Inference, batch {bench.get('batch')}, {bench.get('threads')} threads, "
            f"{_bench_images(bench)}, on {bench.get('cpu') or 'the build machine'}:",
            "",
            "| backend | images/s | vs torch fp32 eager | note |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['name']} | {r['images_per_second']:.1f} | {r['ratio']:.2f}x | "
            f"{r.get('note', '')} |"
            for r in bench["rows"]
        ]
    return [*lines, ""]


def _bench_images(bench: dict[str, Any]) -> str:
    data = bench.get("data") or []
    return f"images from {', '.join(map(shown, data))}" if data else "random images"


def _parity_lines(kind: str, report: dict[str, Any]) -> list[str]:
    status = "installed" if report["passed"] else "NOT installed: below the 99.5% gate"
    fallback, plain = report.get("fallback"), report.get("without_fallback")
    guarded = " with its fp32 fallback" if fallback else ""
    lines = [
        f"- ONNX {kind}{guarded} parity vs torch fp32 on {report['n']} validation images: "
        f"decision agreement {_pct(report['decision_agreement'])}, max |dp| "
        f"{report['max_abs_prob_diff']:.4f} ({status})"
    ]
    if fallback and plain:
        lines.append(
            f"  - fallback: int8 risks in [{fallback['low']:.4f}, {fallback['high']:.4f}] "
            f"(thresholds +- {fallback['margin_log_odds']:.2f} log-odds, fitted on "
            f"{fallback['n_tuning']} other validation images) are re-run on fp32: "
            f"{_pct(fallback['parity_rechecked_share'])} of the parity images; int8 alone "
            f"agrees on {_pct(plain['decision_agreement'])}"
        )
    return lines


def render(inp: CardInputs) -> str:
    """The card's Markdown text."""
    model_dir, run_dir = ModelDir(inp.model_dir), ModelDir(inp.run_dir)
    ckpt = Checkpoint.load(model_dir.root if model_dir.checkpoint.is_file() else run_dir.root)
    raw = json.loads(run_dir.config.read_text())
    resolved = raw.pop("resolved", {})
    cfg = TrainConfig.from_dict(raw)
    synth, real = (
        _eval_metrics(_read_json(inp.synth_eval)),
        _eval_metrics(_read_json(inp.real_eval)),
    )
    model = shlex.quote(str(inp.model_dir))
    eval_cmds = []
    for report_dir, split in ((inp.synth_eval, " --split val"), (inp.real_eval, "")):
        report = _read_json(report_dir)
        if report is not None:
            data = " ".join(f"--data {shlex.quote(d)}" for d in report["data"])
            out = shlex.quote(str(report_dir))
            eval_cmds.append(f"karung evaluate --model {model} {data}{split} --out {out}")
    parity_path = model_dir.parity
    parity = json.loads(parity_path.read_text()) if parity_path.is_file() else None
    lines = [
        "# karung default model: MobileNetV2 bale/sack detector",
        "",
        'Flags listing photos that show bales ("balpres") or sacks ("karungan") of imported '
        "used clothing. `risk = P(bale) + P(sack)`; `karung score` turns it into "
        "block / review / allow with the thresholds below.",
        "",
        *_files_section(inp, ckpt),
        *_reproduce_section(inp, cfg, ckpt, eval_cmds, parity),
        *_data_section(inp, resolved),
        *_metrics_section(synth, real),
        *_thresholds_section(ckpt),
        *_speed_section(_read_json(inp.bench), ckpt, parity),
        "## Known limits",
        "",
        *[f"- {limit}" for limit in KNOWN_LIMITS],
        "",
    ]
    if inp.notes is not None:
        lines += [inp.notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path, out_path: str | Path, **kwargs: Any) -> Path:
    """Render the card for ``run_dir`` into ``out_path`` (model files expected beside it).

    Keyword arguments are the optional :class:`CardInputs` fields (``synth_eval``,
    ``real_eval``, ``bench``, ``synth_command``, ``data_description``).
    """
    out = Path(out_path)
    paths = {
        k: Path(v)
        for k, v in kwargs.items()
        if k in ("synth_eval", "real_eval", "bench", "notes") and v
    }
    texts = {
        k: str(v) for k, v in kwargs.items() if k in ("synth_command", "data_description") and v
    }
    unknown = set(kwargs) - {
        "synth_eval",
        "real_eval",
        "bench",
        "synth_command",
        "data_description",
        "notes",
    }
    if unknown:
        raise TypeError(f"unknown model card inputs: {sorted(unknown)}")
    inputs = CardInputs(run_dir=Path(run_dir), model_dir=out.parent, **paths, **texts)  # type: ignore[arg-type]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(inputs))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m karung.training.model_card")
    parser.add_argument("--run", required=True, help="training run directory")
    parser.add_argument("--out", required=True, help="MODEL_CARD.md path inside the model dir")
    parser.add_argument("--synth-eval", help="karung evaluate output on the synthetic val split")
    parser.add_argument("--real-eval", help="karung evaluate output on held-out real garments")
    parser.add_argument("--bench", help="JSON written by `karung bench inference --json`")
    parser.add_argument("--synth-command", default="", help="the karung synth command used")
    parser.add_argument("--data-description", default="", help="a paragraph on the data")
    parser.add_argument("--notes", help="a Markdown file appended to the card (notes from people)")
    args = parser.parse_args(argv)
    path = write_model_card(
        args.run, args.out, synth_eval=args.synth_eval, real_eval=args.real_eval,
        bench=args.bench, synth_command=args.synth_command,
        data_description=args.data_description, notes=args.notes,
    )  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
