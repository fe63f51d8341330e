"""``karung export`` end to end: pick calibration and parity images, export, quantise, check."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from karung.training.data import Sample, load_samples, select
from karung.training.errors import ExportError
from karung.training.export import (
    FP32_FILE,
    MIN_AGREEMENT,
    ParityReport,
    QuantOptions,
    export_fp32,
    image_batches,
    onnx_model_version,
    parity,
    write_parity,
)
from karung.training.quant_search import (
    CalibratedQuantizer,
    SearchOptions,
    SearchResult,
    TuningSet,
    search_exclusions,
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
    min_agreement: float = MIN_AGREEMENT
    options: QuantOptions = field(default_factory=QuantOptions)
    search: bool = True
    tuning_images: int = 1000
    search_options: SearchOptions = field(default_factory=SearchOptions)
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


def choose_tuning(
    job: ExportJob, ckpt: Checkpoint, calibration: Sequence[Sample], parity_set: Sequence[Sample]
) -> tuple[list[Sample], bool]:
    """Tuning images for the int8 search, disjoint from calibration and parity when possible.

    Returns the samples and whether they are disjoint; a pool too small to spare any falls
    back to the calibration images (never to the parity images, whose gate would overfit).
    """
    pool = recorded_val_samples(ckpt)
    for extra in (job.calibration, job.parity_data):
        pool += load_samples(extra, ckpt.labels) if extra else []
    used = {s.path for s in calibration} | {s.path for s in parity_set}
    unused = list({s.path: s for s in pool if s.path not in used}.values())
    if unused:
        return pick(unused, job.tuning_images, job.seed + 2), True
    return list(calibration), False


def drop_stale(path: Path, ckpt: Checkpoint) -> None:
    """Delete an ONNX file exported from different weights: ``--backend auto`` would use it."""
    if path.is_file() and onnx_model_version(path) != ckpt.model_version:
        path.unlink()


@dataclass(frozen=True)
class ExportResult:
    """The installed ONNX files and their parity reports (keys ``fp32`` and ``int8``)."""

    files: dict[str, Path]
    reports: dict[str, ParityReport]
    search: SearchResult | None = None


def _install(tmp_file: Path, out_dir: Path, name: str, passed: bool) -> Path:
    """Copy to the serving name when parity passed, else to ``*.failed.onnx``."""
    final = out_dir / (name if passed else name.replace(".onnx", FAILED_SUFFIX))
    shutil.copyfile(tmp_file, final)
    return final


def make_int8(
    job: ExportJob,
    ckpt: Checkpoint,
    fp32: Path,
    sets: tuple[list[Sample], list[Sample]],
    work: Path,
) -> tuple[Path, SearchResult | None]:
    """Quantise ``fp32`` (calibration and parity ``sets``); with ``job.search``, mixed precision.

    The search tunes on images outside both sets and leaves the verdict to the parity check.
    """
    calibration, parity_set = sets
    batches = list(image_batches(calibration, ckpt, workers=job.workers))
    if not batches:
        raise ExportError("no readable calibration images")
    quantizer = CalibratedQuantizer(fp32, batches, job.options, work)
    if not job.search:
        return quantizer.build(out=work / ONNX_FILE), None
    samples, disjoint = choose_tuning(job, ckpt, calibration, parity_set)
    tuning_batches = list(image_batches(samples, ckpt, workers=job.workers))
    tuning = TuningSet(ckpt, tuning_batches, disjoint)
    result = search_exclusions(quantizer, tuning, job.min_agreement, job.search_options)
    return quantizer.build(result.excluded, out=work / ONNX_FILE), result


def run_export(job: ExportJob) -> ExportResult:
    """Export fp32 ONNX (and int8 with ``job.int8``) and check both against torch fp32.

    Each file only takes its serving name (``model.fp32.onnx``, ``model.int8.onnx``) when
    its parity passes; a failing one is kept as ``*.failed.onnx`` for inspection, the
    reports (and the int8 search's exclusions and tuning figures) are written to
    ``parity.json`` and :class:`~karung.training.errors.ParityError` is raised.
    """
    ckpt = Checkpoint.load(job.checkpoint)
    sets = choose_sets(job, ckpt)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    for name in (FP32_FILE, ONNX_FILE):
        drop_stale(job.out_dir / name, ckpt)
    search = None
    with tempfile.TemporaryDirectory(prefix="karung-export-") as tmp:
        made = {"fp32": export_fp32(ckpt, Path(tmp) / FP32_FILE)}
        if job.int8:
            made["int8"], search = make_int8(job, ckpt, made["fp32"], sets, Path(tmp) / "int8")
        images = image_batches(sets[1], ckpt, workers=job.workers)
        reports = parity(ckpt, made, images, required=job.min_agreement)
        names = {"fp32": FP32_FILE, "int8": ONNX_FILE}
        files = {k: _install(p, job.out_dir, names[k], reports[k].passed) for k, p in made.items()}
    reports = {k: replace(r, onnx_file=str(files[k])) for k, r in reports.items()}
    notes = {"int8": {"mixed_precision": search.to_dict()}} if search else {}
    write_parity(reports, job.out_dir, notes=notes)
    return ExportResult(files, reports, search)
