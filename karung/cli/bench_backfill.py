"""``karung bench backfill``: images/s and CPU per image of ``karung backfill`` on local JPEGs,
next to ``karung score`` and the service's per-image pipeline, measured in the same run.

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

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from karung.cli.common import die


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the benchmark's arguments."""
    parser.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--images", help="reuse/keep the generated JPEGs in this folder")
    parser.add_argument("--model", help="checkpoint file or model dir (default: shipped model)")
    parser.add_argument("--backend", default="onnx", help="backend of all three (default onnx)")
    parser.add_argument("--actors", type=int, help="backfill actors (default: one per core)")
    parser.add_argument("--service-images", type=int, default=300, help="subset for (3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Run the three measurements and print them side by side."""
    from karung.vision.checkpoint import default_model_dir

    model = Path(args.model or default_model_dir())
    with tempfile.TemporaryDirectory(prefix="karung-bench-backfill-") as tmp:
        folder = Path(args.images) if args.images else Path(tmp) / "images"
        files = _ensure_images(folder, args)
        if len(files) < args.n:
            return die(f"{folder} holds {len(files)} JPEGs, fewer than --n {args.n}")
        rows = {
            "karung score": _score(folder, model, args),
            "karung backfill (Ray)": _backfill(folder, model, Path(tmp) / "out", args),
            "service pipeline": _service(files[: args.service_images], model, args.backend),
        }
    _print(rows, args)
    return 0


def _ensure_images(folder: Path, args: argparse.Namespace) -> list[Path]:
    if not folder.exists():
        print(f"generating {args.n} JPEGs of {args.width}x{args.height} in {folder} ...")
        make_photos(folder, args.n, args.width, args.height)
    return sorted(folder.glob("*.jpg"))[: args.n]


def make_photos(folder: Path, count: int, width: int, height: int, bases: int = 16) -> None:
    """``count`` distinct photo-like JPEGs: a few textured bases (smooth colour fields plus fine
    noise, ~0.3-0.6 MB each, like ``karung bench serve``'s) rolled by a different offset each,
    so generating 2,000 of them costs the JPEG encodes, not 2,000 noise fields."""
    import numpy as np
    from PIL import Image, ImageFilter

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    made = []
    for _ in range(min(bases, count)):
        small = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)
        arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        made.append(np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.6))))
    for i in range(count):
        shift = (i // len(made)) * 7 + 1
        arr = np.roll(made[i % len(made)], shift=(shift % height, shift % width), axis=(0, 1))
        Image.fromarray(arr).save(folder / f"photo{i:04d}.jpg", quality=90)


def _score(folder: Path, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``karung score`` as a subprocess; its CPU from RUSAGE_CHILDREN."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "karung.cli.main", "score", str(folder), "--model", str(model)]
    out = subprocess.run(
        [*cmd, "--backend", args.backend], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scored = sum(1 for line in out.stdout.splitlines() if '"risk"' in line)
    return _figures(scored, wall, cpu, "one process, start-up included")


def _backfill(folder: Path, model: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The backfill on an embedded local Ray; CPU of this process and all its descendants."""
    import ray

    from karung.batch.runner import BackfillConfig, run_backfill

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        config = BackfillConfig(
            inputs=(str(folder),), out=out, model=model, backend=args.backend,
            limit=args.n, actors=args.actors, progress=False,
        )  # fmt: skip
        cpu0, started = family_cpu_seconds(os.getpid()), time.perf_counter()
        summary = run_backfill(config)
        wall = time.perf_counter() - started
        cpu = family_cpu_seconds(os.getpid()) - cpu0
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


def family_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants, plus the children each has reaped
    (``cutime``/``cstime``: Ray's actors exit before the end of the run). Linux ``/proc``."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
    family, grew = {pid}, True
    while grew:
        found = {p for p, f in stats.items() if int(f[1]) in family} - family
        family, grew = family | found, bool(found)
    fields = (11, 12, 13, 14)  # utime, stime, cutime, cstime (after the ")" of the name)
    ticks = sum(int(stats[p][i]) for p in family if p in stats for i in fields)
    return ticks / os.sysconf("SC_CLK_TCK")


def _figures(images: int, wall: float, cpu: float, note: str) -> dict[str, Any]:
    return {
        "images": images,
        "seconds": round(wall, 2),
        "images_per_s": round(images / wall, 1) if wall > 0 else 0.0,
        "cpu_ms_per_image": round(cpu * 1000 / images, 2) if images else float("nan"),
        "note": note,
    }


def _print(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "backend": args.backend, **rows}, indent=2))
        return
    print(f"{os.cpu_count()} cores, backend {args.backend}, {args.width}x{args.height} JPEGs")
    print(f"{'':<24} {'images':>7} {'s':>8} {'images/s':>9} {'CPU ms/img':>11}  note")
    for name, r in rows.items():
        print(
            f"{name:<24} {r['images']:>7} {r['seconds']:>8} {r['images_per_s']:>9} "
            f"{r['cpu_ms_per_image']:>11}  {r['note']}"
        )
    work = rows["karung backfill (Ray)"].get("worker_cpu_ms_per_image")
    print(f"backfill actors' CPU inside their batches (steady state): {work} ms/img")
    base = rows["karung score"]["images_per_s"]
    if base:
        ratio = rows["karung backfill (Ray)"]["images_per_s"] / base
        print(f"backfill / karung score throughput: {ratio:.2f}x")
