"""``karung bench inference``: images/s of torch fp32 eager vs bf16 vs ONNX fp32 vs ONNX int8."""

from __future__ import annotations

import argparse
from typing import Any

from karung.cli.common import add_dirs


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung bench inference``."""
    parser.add_argument(
        "--model", help="checkpoint (default: the shipped model; else ImageNet backbone)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0, help="timing budget per backend")
    parser.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")
    parser.add_argument(
        "--input-size", type=int, default=224, help="input size when no checkpoint exists"
    )
    parser.add_argument("--no-bf16", action="store_true", help="skip torch bf16 (slow w/o AVX512)")
    add_dirs(
        parser,
        "--data",
        "time on real images from this ImageFolder or manifest (default: random images); "
        "the guarded int8 model's speed depends on how many are close calls",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (model card)")


def run(args: argparse.Namespace) -> int:
    """Print the table; exit 1 when no model can be built."""
    import torch

    from karung.cli.common import die
    from karung.training.inference_bench import BenchOptions, bench_checkpoint, run_bench
    from karung.vision.errors import KarungVisionError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        ckpt, path = bench_checkpoint(args.model, args.input_size)
    except KarungVisionError as exc:
        return die(f"no checkpoint at {args.model}" if args.model else str(exc))
    ckpt_dir = path.parent if path else None
    opts = BenchOptions(
        batch_size=args.batch,
        seconds=args.seconds,
        threads=args.threads or None,
        bf16=not args.no_bf16,
        data=tuple(args.data),
    )
    rows = run_bench(ckpt, ckpt_dir, opts)
    _print(rows, str(path) if path else None, ckpt.preprocessing.input_size, args)
    return 0


def _print(rows: list[Any], model: str | None, input_size: int, args: argparse.Namespace) -> None:
    """The table, and with ``--json`` the same rows in a file (the model card reads it)."""
    import dataclasses
    import json
    from pathlib import Path

    import torch

    from karung.training.inference_bench import cpu_name

    print(
        f"model {model or 'ImageNet MobileNetV2 (no checkpoint)'}, input "
        f"{input_size}px, batch {args.batch}, torch threads "
        f"{torch.get_num_threads()}, best of 3 interleaved rounds"
    )
    print(f"{'backend':<36} {'images/s':>10} {'vs eager':>9} {'max |dp|':>9}")
    for row in rows:
        print(
            f"{row.name:<36} {row.images_per_second:>10.1f} {row.ratio:>8.2f}x "
            f"{row.max_prob_diff:>9.4f}  {row.note}"
        )
    fastest = max(rows, key=lambda r: r.images_per_second)
    print(f"fastest: {fastest.name} at {fastest.ratio:.1f}x torch fp32 eager")
    if args.json:
        body = {
            "model": model,
            "input_size": input_size,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "data": list(args.data),
            "cpu": cpu_name(),
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        Path(args.json).write_text(json.dumps(body, indent=2) + "\n")
