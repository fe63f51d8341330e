"""``karung bench synth``: synthesis speed (see :mod:`karung.training.synth.bench`)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    """Delegate argument declaration to the synthesis benchmark."""
    from karung.training.synth.bench import configure as _configure

    _configure(parser)


def run(args: argparse.Namespace) -> int:
    """Run the synthesis benchmark."""
    from karung.training.synth.bench import run as _run

    return int(_run(args))
