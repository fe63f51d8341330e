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
    from karung.training.config import from_args
    from karung.training.trainer import train

    result = train(from_args(args))  # errors: karung.cli.main reports their code
    print(f"checkpoint: {result.checkpoint}")
    return 0
