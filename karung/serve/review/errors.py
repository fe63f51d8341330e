"""Typed errors of the review area; each has a stable ``code`` and the HTTP status of the edge
(see :class:`karung.errors.KarungError`)."""

from __future__ import annotations

from karung.errors import KarungError


class ReviewError(KarungError, code="review_error", status=400):
    """Base class of every review-area error."""


class ItemNotFound(ReviewError, code="item_not_found", status=404):
    """No queue item has that id."""


class NotClaimed(ReviewError, code="not_claimed", status=409):
    """The moderator does not hold the item's lease (never claimed, expired and taken, decided)."""


class InvalidLabel(ReviewError, code="invalid_label"):
    """The label or reason code is not one the queue accepts."""


class NothingToUndo(ReviewError, code="nothing_to_undo", status=409):
    """The moderator has no decision that can still be undone."""


class UndoNotAllowed(ReviewError, code="undo_not_allowed", status=409):
    """The decision exists but can no longer be undone (too old, or others acted after it)."""


class ModeratorExists(ReviewError, code="moderator_exists", status=409):
    """A moderator of that name already exists."""


class UnknownModerator(ReviewError, code="unknown_moderator", status=404):
    """No moderator of that name."""


class WeakPassword(ReviewError, code="weak_password"):
    """The password is too short to be set."""


class PasswordsDiffer(ReviewError, code="passwords_differ"):
    """The password and its confirmation, typed at a prompt, differ."""


class InvalidModeratorName(ReviewError, ValueError, code="invalid_moderator_name"):
    """A moderator name is empty, too long or uses characters outside ``a-z 0-9 . _ - @``."""


class InvalidExportOption(ReviewError, ValueError, code="invalid_export_option"):
    """An option of the dataset export is out of range (``since`` date, ``val_fraction``)."""


class AuthenticationFailed(ReviewError, code="authentication_failed", status=401):
    """Wrong name or password, disabled account, or a missing or expired session."""
