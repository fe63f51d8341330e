"""The root of the backfill's typed errors (see :class:`karung.errors.KarungError`)."""

from __future__ import annotations

from karung.errors import KarungError


class BatchError(KarungError, code="batch_error", status=422):
    """Base class of every error raised by :mod:`karung.batch`."""
