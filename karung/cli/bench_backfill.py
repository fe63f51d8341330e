"""``karung bench backfill``: images/s and CPU per image of ``karung backfill`` on local JPEGs,
next to ``karung score`` and the service's per-image pipeline, measured in the same run.

The engine is :mod:`karung.batch.bench` (it describes the three measurements); this module
parses and prints.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from karung.cli.common import die, from_args


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
    from pathlib import Path

    from karung.batch.bench import BackfillBenchOptions, BenchInputError, run_backfill_bench
    from karung.vision.modeldir import default_model_dir

    opts = from_args(BackfillBenchOptions, args, model=Path(args.model or default_model_dir()))
    try:
        rows = run_backfill_bench(opts)
    except BenchInputError as exc:
        return die(str(exc))
    _print(rows, args)
    return 0


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
