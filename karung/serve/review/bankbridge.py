"""The review loop's view of the hash bank service (``app.state.bank``)."""

from __future__ import annotations

import logging
from typing import Any

from karung.serve.review.effects import BankWriter

log = logging.getLogger(__name__)


def bank_writer(bank: Any) -> BankWriter | None:
    """``bank`` as a :class:`BankWriter`, or None when there is no usable bank."""
    if bank is None:
        return None
    if callable(getattr(bank, "add_confirmed", None)) and callable(
        getattr(bank, "remove_entries", None)
    ):
        writer: BankWriter = bank
        return writer
    return None


def refresh(bank: Any) -> None:
    """Make entries committed just now visible to this replica's matcher at once."""
    fn = getattr(bank, "refresh_if_changed", None)
    if callable(fn):
        try:
            fn()
        except Exception:  # the periodic poller will catch up
            log.exception("bank refresh after a review decision failed")


def match_image(bank: Any, match: dict[str, Any]) -> bytes | None:
    """JPEG bytes of the bank image a match points at, when the bank keeps one."""
    fn = getattr(bank, "entry_thumbnail", None)
    if bank is None or not callable(fn):
        return None
    entry = match.get("entry_id")
    if entry is None:
        return None
    data = fn(int(entry))
    return bytes(data) if data else None
