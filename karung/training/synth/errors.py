"""Typed errors of the synthesiser; each carries a stable ``code`` for the CLI."""

from __future__ import annotations

from typing import ClassVar


class SynthError(Exception):
    """Base class of every error raised by :mod:`karung.training.synth`."""

    code: ClassVar[str] = "synth_error"


class SynthConfigError(SynthError, ValueError):
    """An option is out of range (``n``, ``size``, ``workers``, fractions)."""

    code = "bad_config"


class SourceError(SynthError):
    """The ``--source`` folder is missing, has no ``images.csv`` or no usable photo."""

    code = "bad_source"


class OutputError(SynthError):
    """The output folder cannot be used (not empty, not writable)."""

    code = "bad_output"
