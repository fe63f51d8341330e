"""Typed errors of the synthesiser; each carries a stable ``code`` for the CLI (see
:class:`karung.errors.KarungError`). A bad option exits 2, like a usage error."""

from __future__ import annotations

from karung.errors import KarungError


class SynthError(KarungError, code="synth_error"):
    """Base class of every error raised by :mod:`karung.training.synth`."""


class SynthConfigError(SynthError, ValueError, code="bad_config", exit_code=2):
    """An option is out of range (``n``, ``size``, ``workers``, fractions)."""


class SourceError(SynthError, code="bad_source"):
    """The ``--source`` folder is missing, has no ``images.csv`` or no usable photo."""


class OutputError(SynthError, code="bad_output"):
    """The output folder cannot be used (not empty, not writable)."""
