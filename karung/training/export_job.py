"""``karung export`` end to end: pick calibration and parity images, export, quantise, check."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from karung.training.data import Sample, load_samples, select
from karung.training.errors import ExportError
from karung.training.export import (
    MIN_AGREEMENT,
    ParityReport,
    QuantOptions,
    export_fp32,
    image_batches,
    onnx_model_version,
    parity,
    stamp_band,
    write_parity,
)
from karung.training.fallback_fit import BandFit, FallbackOptions, fit_band
from karung.training.quant_search import (
    CalibratedQuantizer,
    SearchOptions,
    SearchResult,
    TuningSet,
    search_exclusions,
)
from karung.vision.checkpoint import Checkpoint
from karung.vision.fallback import FallbackBackend
from karung.vision.modeldir import FP32_ONNX_FILE, INT8_ONNX_FILE, ModelDir
from karung.vision.onnx_backend import load_onnx

if TYPE_CHECKING:
    from karung.vision.backends import InferenceBackend

UNGUARDED = "int8_without_fallback"


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
    search: bool = False
    fallback: bool = True
    tuning_images: int = 1000
    search_options: SearchOptions = field(default_factory=SearchOptions)
    fallback_options: FallbackOptions = field(default_factory=FallbackOptions)
    workers: int = 2
    seed: int = 0


def recorded_val_samples(ckpt: Checkpoint) -> list[Sample]:
    """The validation split of the data the checkpoint was trained on (from its record)."""
    dirs = [d for d in ckpt.training.data if Path(d).exists()]
    if not dirs:
        return []
    samples = load_samples(dirs, ckpt.labels, ckpt.training.val_fraction)
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
class Int8Build:
    """The quantised file and how it was made (search and fallback figures, when used)."""

    path: Path
    search: SearchResult | None = None
    fallback: BandFit | None = None


@dataclass(frozen=True)
class ExportResult:
    """The installed ONNX files and their parity reports (keys ``fp32`` and ``int8``).

    ``unguarded`` is the int8 file's own parity without the fp32 fallback (not gated).
    """

    files: dict[str, Path]
    reports: dict[str, ParityReport]
    search: SearchResult | None = None
    fallback: BandFit | None = None
    unguarded: ParityReport | None = None


def _install(tmp_file: Path, out_dir: Path, name: str, passed: bool) -> Path:
    """Copy to the serving name when parity passed, else to ``*.failed.onnx``."""
    model_dir = ModelDir(out_dir)
    final = model_dir.file(name) if passed else model_dir.failed(name)
    shutil.copyfile(tmp_file, final)
    return final


def make_int8(
    job: ExportJob,
    ckpt: Checkpoint,
    fp32: Path,
    sets: tuple[list[Sample], list[Sample]],
    work: Path,
) -> Int8Build:
    """Quantise ``fp32`` into ``model.int8.onnx`` beside it.

    With ``job.search`` the most int8-hostile nodes stay fp32 (mixed precision); with
    ``job.fallback`` the file is stamped with the band of risks it re-checks on the fp32
    graph. Both tune on images outside the calibration and parity ``sets`` and leave the
    verdict to the parity check.
    """
    calibration, parity_set = sets
    batches = list(image_batches(calibration, ckpt, workers=job.workers))
    if not batches:
        raise ExportError("no readable calibration images")
    quantizer = CalibratedQuantizer(fp32, batches, job.options, work)
    out = ModelDir(fp32.parent).int8_onnx
    if not (job.search or job.fallback):
        return Int8Build(quantizer.build(out=out))
    samples, disjoint = choose_tuning(job, ckpt, calibration, parity_set)
    tuning = TuningSet(ckpt, list(image_batches(samples, ckpt, workers=job.workers)), disjoint)
    search = (
        search_exclusions(quantizer, tuning, job.min_agreement, job.search_options)
        if job.search
        else None
    )
    quantizer.build(search.excluded if search else (), out=out)
    if not job.fallback:
        return Int8Build(out, search)
    fit = fit_band(tuning.ref_risk, tuning.risks(out), ckpt.thresholds, job.fallback_options)
    stamp_band(out, fit.band, reference_file=fp32.name)
    return Int8Build(out, search, fit)


def check_parity(
    job: ExportJob, ckpt: Checkpoint, made: dict[str, Path], parity_set: list[Sample]
) -> tuple[dict[str, ParityReport], ParityReport | None, float | None]:
    """Parity of each file as served (int8 with its fallback), the int8 file without it,
    and the share of parity images the fallback re-checked."""
    # spin=False: sessions take turns on every batch, and a spinning idle pool would steal
    # the cores of the session running next (measured: fp32 ONNX at half its speed).
    backends: dict[str, InferenceBackend] = {
        k: load_onnx(p, ckpt.risk_head, spin=False) for k, p in made.items()
    }
    guarded = backends.get("int8")
    if isinstance(guarded, FallbackBackend):
        backends[UNGUARDED] = guarded.fast
    # Decoded up front (~0.3 GB for 1000 images at 160 px): decode workers running beside
    # the timed forward passes would halve the speeds the reports quote.
    images = list(image_batches(parity_set, ckpt, workers=job.workers))
    reports = parity(ckpt, backends, images, required=job.min_agreement)
    unguarded = reports.pop(UNGUARDED, None)
    share = guarded.rechecked_share if isinstance(guarded, FallbackBackend) else None
    return reports, unguarded, share


def run_export(job: ExportJob) -> ExportResult:
    """Export fp32 ONNX (and int8 with ``job.int8``) and check both against torch fp32.

    Each file only takes its serving name (``model.fp32.onnx``, ``model.int8.onnx``) when
    its parity passes (a guarded int8 file also needs the fp32 file it falls back on); a
    failing one is kept as ``*.failed.onnx`` for inspection, the reports (with the int8
    search's and fallback's figures) are written to ``parity.json`` and
    :class:`~karung.training.errors.ParityError` is raised.
    """
    ckpt = Checkpoint.load(job.checkpoint)
    sets = choose_sets(job, ckpt)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    out = ModelDir(job.out_dir)
    for stale in (out.fp32_onnx, out.int8_onnx):
        drop_stale(stale, ckpt)
    build = None
    with tempfile.TemporaryDirectory(prefix="karung-export-") as tmp:
        made = {"fp32": export_fp32(ckpt, ModelDir(Path(tmp)).fp32_onnx)}
        if job.int8:
            build = make_int8(job, ckpt, made["fp32"], sets, Path(tmp) / "int8")
            made["int8"] = build.path
        reports, unguarded, share = check_parity(job, ckpt, made, sets[1])
        fp32_ok = reports["fp32"].passed
        names = {"fp32": FP32_ONNX_FILE, "int8": INT8_ONNX_FILE}
        files = {
            k: _install(p, job.out_dir, names[k], reports[k].passed and fp32_ok)
            for k, p in made.items()
        }
    reports = {k: replace(r, onnx_file=str(files[k])) for k, r in reports.items()}
    write_parity(reports, job.out_dir, notes=int8_notes(build, unguarded, share))
    return ExportResult(
        files,
        reports,
        build.search if build else None,
        build.fallback if build else None,
        unguarded,
    )


def int8_notes(
    build: Int8Build | None, unguarded: ParityReport | None, share: float | None
) -> dict[str, dict[str, Any]]:
    """Extra ``parity.json`` entries of the int8 report: search, fallback, unguarded parity."""
    if build is None:
        return {}
    notes: dict[str, Any] = {}
    if build.search is not None:
        notes["mixed_precision"] = build.search.to_dict()
    if build.fallback is not None:
        notes["fallback"] = {**build.fallback.to_dict(), "parity_rechecked_share": share}
    if unguarded is not None:
        body = unguarded.to_dict()
        body.pop("passed")
        body.pop("required_agreement")
        notes["without_fallback"] = body
    return {"int8": notes}
