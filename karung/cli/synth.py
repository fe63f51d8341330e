"""``karung synth --out DIR --n N --seed S [--source DIR|none]``: synthesise a labelled set."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from karung.cli.common import die, from_args

DEFAULT_SOURCE = "../shared/data/clothing-cc0"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung synth``."""
    parser.add_argument("--out", type=Path, help="output folder (ImageFolder + manifest.csv)")
    parser.add_argument("--n", type=int, default=20000, help="number of images (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help=f"CC0 photo folder with images.csv, or 'none' for procedural only "
        f"(default {DEFAULT_SOURCE})",
    )
    parser.add_argument("--size", type=int, default=320, help="long side in px (default 320)")
    parser.add_argument(
        "--workers", type=int, default=_cores(), help="processes (default: all cores)"
    )
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of val senders")
    parser.add_argument(
        "--pool", type=int, default=0, help="garment cut-outs to segment (0 = scale with --n)"
    )
    parser.add_argument("--contact", type=int, default=48, help="images per contact sheet")
    parser.add_argument(
        "--real-val-manifest",
        type=Path,
        help="also write a manifest of the real CC0 photos of validation senders",
    )
    parser.add_argument(
        "--real-manifest",
        type=Path,
        help="also write a manifest of every real CC0 photo, split by sender (the trainer's "
        "real negatives: train senders for fitting, val senders for thresholds)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing set")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _source(raw: str) -> Path | None:
    return None if raw.strip().lower() == "none" else Path(raw)


def run(args: argparse.Namespace) -> int:
    """Exit 0 on success, 1 on a bad source or output, 2 on bad options."""
    from karung.training.synth.config import SynthConfig
    from karung.training.synth.realval import write_real_manifest, write_real_val_manifest
    from karung.training.synth.runner import generate

    source = _source(args.source)
    real = {"val": args.real_val_manifest, "all": args.real_manifest}
    if args.out is None and not any(real.values()):
        return die("pass --out DIR (and/or --real-manifest / --real-val-manifest PATH)", 2)
    # a KarungError is reported (code, message, exit status) by karung.cli.main
    if any(real.values()) and source is None:
        return die("--real-manifest and --real-val-manifest need a photo --source", 2)
    if source is not None and real["val"] is not None:
        rows = write_real_val_manifest(source, real["val"], args.val_fraction)
        print(f"real val manifest: {rows} photos -> {real['val']}")
    if source is not None and real["all"] is not None:
        rows = write_real_manifest(source, real["all"], args.val_fraction)
        print(f"real manifest: {rows} photos -> {real['all']}")
    if args.out is None:
        return 0
    cfg = from_args(
        SynthConfig, args, source=source, pool_size=args.pool, contact_count=args.contact
    )
    summary = generate(cfg, quiet=args.quiet)
    print(
        f"wrote {summary.n} images to {args.out} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.1f} img/s on {summary.workers} workers, "
        f"{summary.images_per_second / summary.workers:.1f} img/s per worker); "
        f"labels {summary.per_label}, splits {summary.per_split}"
    )
    return 0
