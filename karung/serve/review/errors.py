"""Typed errors of the review area; each has a stable ``code`` and the HTTP status of the edge."""

from __future__ import annotations

from typing import ClassVar


class ReviewError(Exception):
    """Base class of every review-area error."""

    code: ClassVar[str] = "review_error"
    http_status: ClassVar[int] = 400


class ItemNotFound(ReviewError):
    """No queue item has that id."""

    code = "item_not_found"
    http_status = 404


class NotClaimed(ReviewError):
    """The moderator does not hold the item's lease (never claimed, expired and taken, decided)."""

    code = "not_claimed"
    http_status = 409


class InvalidLabel(ReviewError):
    """The label or reason code is not one the queue accepts."""

    code = "invalid_label"


class NothingToUndo(ReviewError):
    """The moderator has no decision that can still be undone."""

    code = "nothing_to_undo"
    http_status = 409


class UndoNotAllowed(ReviewError):
    """The decision exists but can no longer be undone (too old, or others acted after it)."""

    code = "undo_not_allowed"
    http_status = 409


class ModeratorExists(ReviewError):
    """A moderator of that name already exists."""

    code = "moderator_exists"
    http_status = 409


class UnknownModerator(ReviewError):
    """No moderator of that name."""

    code = "unknown_moderator"
    http_status = 404


class WeakPassword(ReviewError):
    """The password is too short to be set."""

    code = "weak_password"


class AuthenticationFailed(ReviewError):
    """Wrong name or password, disabled account, or a missing or expired session."""

    code = "authentication_failed"
    http_status = 401
