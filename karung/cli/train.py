"""``karung train --data DIR [--data DIR ...] --out runs/NAME``: fine-tune the detector."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung train`` (see :mod:`karung.training.config`)."""
    from karung.training.config import add_arguments

    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Train, calibrate and save ``RUN_DIR/model.pt``; exit 1 on bad data or options."""
    from karung.training.runtime import prefer_passive_threads

    prefer_passive_threads()  # before torch is imported
    from karung.cli.common import die
    from karung.training.config import from_args
    from karung.training.errors import KarungTrainingError
    from karung.training.trainer import train
    from karung.vision.errors import KarungVisionError

    try:
        result = train(from_args(args))
    except (KarungTrainingError, KarungVisionError) as exc:
        return die(f"{exc.code}: {exc}")
    print(f"checkpoint: {result.checkpoint}")
    return 0
