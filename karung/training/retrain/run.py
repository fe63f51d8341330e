"""``karung retrain`` without the database: labelled folders in, a judged challenger out.

The CLI exports the moderators' decisions to a labelled folder first (the training stack never
reads the service's database) and promotes afterwards; this module does everything between:
features under the champion's backbone, the challenger's fit, the paired comparison on held-out
real photos, the challenger's model folder (checkpoint, parity-gated ONNX files, base set,
``lineage.json``) and the Markdown report.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from karung.training.data import Sample, load_samples
from karung.training.errors import ExportError
from karung.training.export_job import ExportJob, run_export
from karung.training.features import default_cache_dir
from karung.training.head import LinearHead
from karung.training.retrain.base import BaseSet, load_base
from karung.training.retrain.compare import Comparison, GatePolicy, Scored, compare
from karung.training.retrain.encoder import champion_head, model_features
from karung.training.retrain.fit import FitOptions, Fitted, Rows, fit_challenger, risk_with
from karung.training.retrain.report import write_report
from karung.vision.checkpoint import Checkpoint, default_version
from karung.vision.lineage import Lineage, content_digest, write_lineage
from karung.vision.model import with_head_params
from karung.vision.modeldir import ModelDir
from karung.vision.probs import RiskHead
from karung.vision.training_record import TrainingRecord

CHALLENGER_DIR = "challenger"


@dataclass(frozen=True)
class RetrainJob:
    """What to retrain from what."""

    champion: Path
    data: tuple[str, ...]
    out: Path
    reviewed: tuple[str, ...] = ()
    base: Path | None = None
    fit: FitOptions = field(default_factory=FitOptions)
    gate: GatePolicy = field(default_factory=GatePolicy)
    int8: bool = True
    threads: int = 2
    progress: bool = True


@dataclass(frozen=True)
class Labelled:
    """The labelled folders' readable rows and their content hashes."""

    samples: list[Sample]
    x: np.ndarray
    keys: tuple[str, ...]
    held_out: np.ndarray


@dataclass(frozen=True)
class Outcome:
    """Everything the CLI needs to decide on promotion and to print."""

    champion: Checkpoint
    challenger_dir: Path
    challenger_version: str
    comparison: Comparison
    exported: bool
    export_error: str
    report: Path
    summary: dict[str, Any]


def load_labelled(job: RetrainJob, ckpt: Checkpoint) -> Labelled:
    """Samples of every labelled folder and their features under the champion's backbone."""
    samples = load_samples(job.data, ckpt.labels)
    feats = model_features(
        [s.path for s in samples],
        ckpt,
        default_cache_dir(),
        threads=job.threads,
        progress=job.progress,
    )
    kept = [s for s, ok in zip(samples, feats.ok, strict=True) if ok]
    keys = tuple(k for k, ok in zip(feats.keys, feats.ok, strict=True) if ok)
    held = np.array([s.split != "train" for s in kept], dtype=bool)
    return Labelled(kept, feats.x[feats.ok], keys, held)


def _rows(x: np.ndarray, y: np.ndarray, labelled: bool) -> Rows:
    return Rows(x, y, np.full(y.size, labelled, dtype=bool))


def _cat(*parts: Rows) -> Rows:
    return Rows(
        np.concatenate([p.x for p in parts]).astype(np.float32),
        np.concatenate([p.y for p in parts]).astype(np.int64),
        np.concatenate([p.labelled for p in parts]),
    )


def assemble(
    lab: Labelled, base: BaseSet | None, risk_head: RiskHead
) -> tuple[Rows, Rows, np.ndarray, Rows]:
    """Training rows, validation rows, negatives for the cuts, evaluation rows."""
    y = np.array([s.label for s in lab.samples], dtype=np.int64)
    lab_train = _rows(lab.x[~lab.held_out], y[~lab.held_out], True)
    lab_val = _rows(lab.x[lab.held_out], y[lab.held_out], True)
    empty = _rows(np.zeros((0, lab.x.shape[1]), np.float32), np.zeros(0, np.int64), False)
    if base is None:
        base_train = base_val = base_neg = empty
    else:
        neg = base.val & base.real & ~risk_head.is_risky(base.y)
        base_train = _rows(base.x[~base.val], base.y[~base.val], False)
        base_val = _rows(base.x[base.val], base.y[base.val], False)
        base_neg = _rows(base.x[neg], base.y[neg], False)
    lab_neg = lab_val.x[~risk_head.is_risky(lab_val.y)]
    # Cuts come from the base set's real negatives; only without any do the held-out labelled
    # negatives set them (then the false-block figures are in-sample for the challenger).
    cuts = base_neg.x if base_neg.y.size else lab_neg
    return _cat(base_train, lab_train), _cat(base_val, lab_val), cuts, _cat(lab_val, base_neg)


def challenger_checkpoint(ckpt: Checkpoint, fitted: Fitted, record: dict[str, Any]) -> Checkpoint:
    """The champion with the new classifier layer, temperature, cuts and a new version."""
    import torch

    state = with_head_params(
        ckpt.state_dict,
        torch.from_numpy(fitted.head.weight.astype(np.float32)),
        torch.from_numpy(fitted.head.bias.astype(np.float32)),
    )
    return ckpt.with_updates(
        state_dict=state,
        temperature=float(fitted.temperature),
        thresholds=fitted.thresholds,
        thresholds_calibrated=fitted.chosen is not None,
        training=TrainingRecord.from_dict(record),
        model_version=default_version(state),
    )


def _export(job: RetrainJob, folder: Path, calib: tuple[str, ...]) -> str:
    """Export and parity-gate the challenger; the error text, empty when it passed.

    An int8 file that fails its parity gate does not sink the retrain: the fp32 file alone is
    exported and gated again (serving then runs fp32 ONNX, as it would without an int8 file).
    """
    error = ""
    for int8 in (True, False) if job.int8 else (False,):
        try:
            run_export(
                ExportJob(
                    checkpoint=ModelDir(folder).checkpoint,
                    out_dir=folder,
                    int8=int8,
                    calibration=calib,
                    parity_data=calib,
                    calibration_images=64,
                    parity_images=200,
                    workers=job.threads,
                )
            )
        except ExportError as exc:
            error = str(exc)
            continue
        return ""
    return error


def _judge(ckpt: Checkpoint, fitted: Fitted, ev: Rows, gate: GatePolicy) -> Comparison:
    """Champion and challenger scored on the same held-out rows, compared."""
    w, b = champion_head(ckpt)
    champ = Scored(
        risk_with(w, b, ckpt.risk_head, ev.x),
        ckpt.thresholds.block,
        ckpt.thresholds.review,
    )
    chall = Scored(
        risk_with(
            fitted.head.weight,
            fitted.head.bias,
            replace(ckpt.risk_head, temperature=fitted.temperature),
            ev.x,
        ),
        fitted.thresholds.block,
        fitted.thresholds.review,
    )
    return compare(champ, chall, ckpt.risk_head.is_risky(ev.y), gate)


class _Clock:
    """Seconds per stage, for the report and the README's walkthrough."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.last, 1)
        self.last = now


def retrain(job: RetrainJob) -> Outcome:
    """Fit, compare, export and report; promotion is the caller's (it owns the database)."""
    clock = _Clock()
    ckpt = Checkpoint.load(job.champion)
    base_path = job.base or ModelDir.at(job.champion).retrain_base
    base = load_base(base_path, ckpt) if base_path.is_file() else None
    lab = load_labelled(job, ckpt)
    clock.lap("features_s")
    train, val, cuts, ev = assemble(lab, base, ckpt.risk_head)
    init = LinearHead(*champion_head(ckpt))
    fitted = fit_challenger(train, val, cuts, ckpt.risk_head, job.fit, init, ckpt.thresholds)
    clock.lap("fit_s")
    comparison = _judge(ckpt, fitted, ev, job.gate)
    clock.lap("compare_s")
    data = _data_record(job, lab, base, train, ev)
    folder = job.out / CHALLENGER_DIR
    new = challenger_checkpoint(ckpt, fitted, {"recipe": "retrain", "data": list(job.data), **data})
    new.save(ModelDir(folder).checkpoint)
    error = _export(job, folder, job.data)
    clock.lap("export_s")
    if base is not None:
        shutil.copyfile(base_path, ModelDir(folder).retrain_base)
    lineage = Lineage(
        model_version=new.model_version,
        parent_version=ckpt.model_version,
        parent_path=str(Path(job.champion).resolve()),
        data=data,
        synth_seed=(base.meta.get("synth_seed") if base else None),
        comparison=comparison.to_dict(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_lineage(folder, lineage)
    seconds = round(time.perf_counter() - clock.start, 1)
    summary = {"seconds": seconds, "stages": clock.stages, "data": data}
    report = write_report(job.out / "report.md", ckpt, new, comparison, lineage, error, summary)
    return Outcome(ckpt, folder, new.model_version, comparison, not error, error, report, summary)


def inside(path: str | Path, folders: Sequence[Path]) -> bool:
    """Whether ``path`` lies in one of ``folders`` (resolved; a sibling folder whose name
    merely starts like one of them does not count)."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def _data_record(
    job: RetrainJob, lab: Labelled, base: BaseSet | None, train: Rows, ev: Rows
) -> dict[str, Any]:
    """Counts and content hashes of what the challenger saw (for lineage and the report)."""
    reviewed = [Path(d).resolve() for d in job.reviewed]
    rev_keys = [k for s, k in zip(lab.samples, lab.keys, strict=True) if inside(s.path, reviewed)]
    return {
        "labelled_rows": len(lab.samples),
        "labelled_train": int((~lab.held_out).sum()),
        "labelled_held_out": int(lab.held_out.sum()),
        "labelled_sha256": content_digest(lab.keys),
        "reviewed_rows": len(rev_keys),
        "reviewed_sha256": content_digest(rev_keys),
        "base_rows": base.size if base else 0,
        "train_rows": int(train.y.size),
        "eval_rows": int(ev.y.size),
        "folders": list(job.data),
    }
