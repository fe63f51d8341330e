"""The backfill benchmark (``karung bench backfill``): images/s and CPU per image of
``karung backfill`` on local JPEGs, next to ``karung score`` and the service's per-image
pipeline, measured in the same run.

Three measurements over the same generated 1600x1200 JPEGs (default 2,000), same model and
backend:

1. ``karung score DIR`` as a subprocess (decode + model, no hashes, no bank): wall time, and CPU
   from ``RUSAGE_CHILDREN``;
2. ``karung backfill DIR`` on an embedded local Ray started beforehand (so Ray's own start-up is
   not counted; the actors' start-up and model load are): wall time, and the CPU of this process
   and every Ray process it started (GCS, raylet, workers, reaped ones included), from ``/proc``,
   next to the CPU the actors spent inside their batches (the steady-state cost per image);
3. the service's per-image work in this process (``karung.serve.intake_worker.intake`` with
   hashes, then the model on micro-batches of 8, one inference thread), on a subset: CPU per
   image only (no HTTP, no fetching; ``karung bench serve`` measures those).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from karung.batch.errors import BatchError
from karung.serve.bench.harness import photo_like_pixels, process_cpu_seconds


class BenchInputError(BatchError, code="bench_input"):
    """The reused image folder holds fewer JPEGs than asked for."""


@dataclass(frozen=True)
class BackfillBenchOptions:
    """``n`` images of ``width`` x ``height`` (kept in ``images`` when given), one ``model``
    and ``backend`` for all three; ``actors`` None: one per core; the service pipeline on the
    first ``service_images``. The command line holds the defaults."""

    model: Path
    n: int
    width: int
    height: int
    images: str | None
    backend: str
    actors: int | None
    service_images: int


def run_backfill_bench(opts: BackfillBenchOptions) -> dict[str, dict[str, Any]]:
    """The three measurements, by name.

    Raises:
        BenchInputError: ``opts.images`` holds fewer than ``opts.n`` JPEGs.
    """
    with tempfile.TemporaryDirectory(prefix="karung-bench-backfill-") as tmp:
        folder = Path(opts.images) if opts.images else Path(tmp) / "images"
        files = _ensure_images(folder, opts)
        if len(files) < opts.n:
            raise BenchInputError(f"{folder} holds {len(files)} JPEGs, fewer than --n {opts.n}")
        return {
            "karung score": _score(folder, opts.model, opts),
            "karung backfill (Ray)": _backfill(folder, opts.model, Path(tmp) / "out", opts),
            "service pipeline": _service(files[: opts.service_images], opts.model, opts.backend),
        }


def _ensure_images(folder: Path, opts: BackfillBenchOptions) -> list[Path]:
    if not folder.exists():
        print(f"generating {opts.n} JPEGs of {opts.width}x{opts.height} in {folder} ...")
        make_photos(folder, opts.n, opts.width, opts.height)
    return sorted(folder.glob("*.jpg"))[: opts.n]


def make_photos(folder: Path, count: int, width: int, height: int, bases: int = 16) -> None:
    """``count`` distinct photo-like JPEGs: a few textured bases (like ``karung bench
    serve``'s) rolled by a different offset each, so generating 2,000 of them costs the JPEG
    encodes, not 2,000 noise fields."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    made = [photo_like_pixels(rng, width, height) for _ in range(min(bases, count))]
    for i in range(count):
        shift = (i // len(made)) * 7 + 1
        arr = np.roll(made[i % len(made)], shift=(shift % height, shift % width), axis=(0, 1))
        Image.fromarray(arr).save(folder / f"photo{i:04d}.jpg", quality=90)


def _score(folder: Path, model: Path, opts: BackfillBenchOptions) -> dict[str, Any]:
    """``karung score`` as a subprocess; its CPU from RUSAGE_CHILDREN."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "karung.cli.main", "score", str(folder), "--model", str(model)]
    out = subprocess.run(
        [*cmd, "--backend", opts.backend], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scored = sum(1 for line in out.stdout.splitlines() if '"risk"' in line)
    return _figures(scored, wall, cpu, "one process, start-up included")


def _backfill(folder: Path, model: Path, out: Path, opts: BackfillBenchOptions) -> dict[str, Any]:
    """The backfill on an embedded local Ray; CPU of this process and all its descendants."""
    import ray

    from karung.batch.runner import BackfillConfig, run_backfill

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        config = BackfillConfig(
            inputs=(str(folder),), out=out, model=model, backend=opts.backend,
            limit=opts.n, actors=opts.actors, progress=False,
        )  # fmt: skip
        cpu0, started = process_cpu_seconds(os.getpid(), reaped=True), time.perf_counter()
        summary = run_backfill(config)
        wall = time.perf_counter() - started
        cpu = process_cpu_seconds(os.getpid(), reaped=True) - cpu0
    finally:
        ray.shutdown()
    scored = summary["rows"] - sum(summary["errors"].values())
    figures = _figures(scored, wall, cpu, "every Ray process; actor start-up included")
    work = summary["run"]["worker_cpu_seconds"]
    figures["worker_cpu_ms_per_image"] = round(work * 1000 / scored, 2) if scored else None
    return figures


def _service(files: list[Path], model: Path, backend: str) -> dict[str, Any]:
    """The service's intake (hashes on) and micro-batched model, CPU per image, in-process."""
    import numpy as np

    from karung.serve.batcher import infer
    from karung.serve.intake_worker import intake, warm
    from karung.vision.classifier import Classifier
    from karung.vision.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    clf = Classifier.from_path(model, backend=backend, threads=1)
    pre = clf.preprocessing
    blobs = [p.read_bytes() for p in files]
    warm()
    infer(clf, intake(blobs[0], pre, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, True).pixels)
    cpu0, started = time.process_time(), time.perf_counter()
    for start in range(0, len(blobs), 8):
        got = [
            intake(b, pre, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, True)
            for b in blobs[start : start + 8]
        ]
        infer(clf, np.concatenate([g.pixels for g in got]))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    return _figures(len(blobs), wall, cpu, "in-process, one thread, no HTTP/fetch")


def _figures(images: int, wall: float, cpu: float, note: str) -> dict[str, Any]:
    return {
        "images": images,
        "seconds": round(wall, 2),
        "images_per_s": round(images / wall, 1) if wall > 0 else 0.0,
        "cpu_ms_per_image": round(cpu * 1000 / images, 2) if images else float("nan"),
        "note": note,
    }
