"""``karung export`` end to end: pick calibration and parity images, export, quantise, check."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from karung.training.data import Sample, load_samples, select
from karung.training.errors import ExportError
from karung.training.export import (
    FP32_FILE,
    ParityReport,
    QuantOptions,
    export_fp32,
    image_batches,
    onnx_model_version,
    parity,
    quantize_int8,
    write_parity,
)
from karung.vision.checkpoint import ONNX_FILE, Checkpoint

FAILED_SUFFIX = ".failed.onnx"


@dataclass(frozen=True)
class ExportJob:
    """What to export and how to check it."""

    checkpoint: Path
    out_dir: Path
    int8: bool = True
    calibration: tuple[str, ...] = ()
    parity_data: tuple[str, ...] = ()
    calibration_images: int = 256
    parity_images: int = 1000
    keep_fp32: bool = False
    options: QuantOptions = field(default_factory=QuantOptions)
    workers: int = 2
    seed: int = 0


def recorded_val_samples(ckpt: Checkpoint) -> list[Sample]:
    """The validation split of the data the checkpoint was trained on (from its metadata)."""
    dirs = [d for d in ckpt.training.get("data", []) if Path(d).exists()]
    if not dirs:
        return []
    samples = load_samples(dirs, ckpt.labels, float(ckpt.training.get("val_fraction", 0.2)))
    return select(samples, "val")


def pick(samples: Sequence[Sample], n: int, seed: int) -> list[Sample]:
    """A reproducible random subset of at most ``n`` samples."""
    if len(samples) <= n:
        return list(samples)
    return random.Random(seed).sample(list(samples), n)


def choose_sets(job: ExportJob, ckpt: Checkpoint) -> tuple[list[Sample], list[Sample]]:
    """Calibration and parity samples; disjoint whenever they come from the same pool."""
    recorded = recorded_val_samples(ckpt)
    cal_pool = load_samples(job.calibration, ckpt.labels) if job.calibration else recorded
    par_pool = (
        load_samples(job.parity_data, ckpt.labels) if job.parity_data else (recorded or cal_pool)
    )
    if not cal_pool and job.int8:
        raise ExportError(
            "no calibration images: pass --calibration DIR (the checkpoint records no usable "
            "training data)"
        )
    if not par_pool:
        raise ExportError("no parity images: pass --parity-data DIR")
    calibration = pick(cal_pool, job.calibration_images, job.seed)
    used = {s.path for s in calibration}
    unused = [s for s in par_pool if s.path not in used]
    # A tiny pool may be used up by calibration; then parity reuses it rather than failing.
    parity_set = pick(unused or list(par_pool), job.parity_images, job.seed + 1)
    return calibration, parity_set


def drop_stale(path: Path, ckpt: Checkpoint) -> None:
    """Delete an int8 file exported from different weights: ``--backend auto`` would use it."""
    if path.is_file() and onnx_model_version(path) != ckpt.model_version:
        path.unlink()


def run_export(job: ExportJob) -> tuple[Path, ParityReport]:
    """Export (and quantise) ``job.checkpoint``; returns the ONNX path and its parity report.

    The int8 file only takes its serving name (``model.int8.onnx``) when parity passes; a
    failing one is kept as ``model.int8.failed.onnx`` for inspection and
    :class:`~karung.training.errors.ParityError` is raised.
    """
    ckpt = Checkpoint.load(job.checkpoint)
    calibration, parity_set = choose_sets(job, ckpt)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    drop_stale(job.out_dir / ONNX_FILE, ckpt)
    with tempfile.TemporaryDirectory(prefix="karung-export-") as tmp:
        fp32 = export_fp32(ckpt, Path(tmp) / FP32_FILE)
        if job.keep_fp32 or not job.int8:
            shutil.copyfile(fp32, job.out_dir / FP32_FILE)
        if not job.int8:
            target = job.out_dir / FP32_FILE
        else:
            batches = list(image_batches(calibration, ckpt, workers=job.workers))
            target = quantize_int8(fp32, Path(tmp) / ONNX_FILE, batches, job.options)
        report = parity(ckpt, target, image_batches(parity_set, ckpt, workers=job.workers))
        if job.int8:
            name = ONNX_FILE if report.passed else ONNX_FILE.replace(".onnx", FAILED_SUFFIX)
            final = job.out_dir / name
            shutil.copyfile(target, final)
            report = ParityReport(**{**report.__dict__, "onnx_file": str(final)})
        else:
            final = target
    write_parity(report, job.out_dir)
    return final, report
