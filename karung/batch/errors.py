"""The root of the backfill's typed errors (see :class:`karung.errors.KarungError`)."""

from __future__ import annotations

from karung.errors import KarungError


class BatchError(KarungError, code="batch_error", status=422):
    """Base class of every error raised by :mod:`karung.batch`."""


class BackfillConfigError(BatchError, ValueError, code="backfill_config_invalid"):
    """A backfill's options are out of range or do not fit together (found before Ray starts).

    Messages name the ``karung backfill`` flags, as the command is where options come from.
    """
