"""``karung qat --model CKPT --out runs/NAME``: fine-tune a checkpoint for its int8 export.

Runs quantisation-aware fine-tuning (see :mod:`karung.training.qat`) and saves a re-calibrated
``model.pt`` in ``--out``; then ``karung export --model runs/NAME --int8`` quantises it.
"""

from __future__ import annotations

import argparse

from karung.cli.common import add_dirs, add_reduce_range


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung qat``."""
    parser.add_argument("--model", required=True, help="trained checkpoint file or model dir")
    parser.add_argument("--out", required=True, help="run dir for the fine-tuned checkpoint")
    add_dirs(parser, "--data", "training data (default: the data the checkpoint was trained on)")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps (default 200)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate")
    parser.add_argument(
        "--consistency",
        type=float,
        default=5.0,
        help="weight of the fp32-vs-int8 logit gap against the task loss (default 5)",
    )
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument(
        "--recalibrate-every", type=int, default=50, help="steps between activation-range updates"
    )
    add_reduce_range(parser, "simulate 7-bit weights (auto: as karung export decides on this CPU)")
    parser.add_argument("--workers", type=int, default=2, help="decode workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Fine-tune and save; exit 1 on bad options, data or checkpoints."""
    from karung.training.runtime import prefer_passive_threads

    prefer_passive_threads()  # before torch is imported
    from pathlib import Path

    from karung.cli.common import from_args, reduce_range
    from karung.training.qat import QatConfig, run_qat

    # a KarungError is reported (code, message, exit status) by karung.cli.main
    cfg = from_args(
        QatConfig,
        args,
        model=Path(args.model),
        out=Path(args.out),
        data=tuple(args.data),
        reduce_range=reduce_range(args),
        progress=not args.no_progress,
    )
    result = run_qat(cfg)
    last = result.history[-1]
    print(f"last step: task loss {last['task']:.4f}, fp32-vs-int8 gap {last['gap']:.4f}")
    print(f"checkpoint: {result.checkpoint}")
    return 0
