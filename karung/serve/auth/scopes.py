"""Scopes an API key can hold and what each one grants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from karung.errors import KarungError

SCORE: Final = "score"
BANK_READ: Final = "bank:read"
BANK_WRITE: Final = "bank:write"
REVIEW: Final = "review"
ADMIN: Final = "admin"
SCOPES: Final = (SCORE, BANK_READ, BANK_WRITE, REVIEW, ADMIN)

# A scope implies others: admin can do everything, writing the bank includes reading it.
_IMPLIES: Final[dict[str, frozenset[str]]] = {
    ADMIN: frozenset(SCOPES),
    BANK_WRITE: frozenset({BANK_WRITE, BANK_READ}),
}


class UnknownScope(KarungError, ValueError, code="unknown_scope", status=422):
    """A scope name that does not exist."""


def parse_scopes(text: str | Iterable[str]) -> frozenset[str]:
    """Parse ``"score,bank:write"`` (or an iterable of names); raise :class:`UnknownScope`."""
    names = text.split(",") if isinstance(text, str) else list(text)
    scopes = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise UnknownScope(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise UnknownScope("a key needs at least one scope")
    return scopes


def effective(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes held plus everything they imply."""
    out: set[str] = set()
    for scope in scopes:
        out |= _IMPLIES.get(scope, frozenset({scope}))
    return frozenset(out)


def format_scopes(scopes: Iterable[str]) -> str:
    """Canonical comma-separated form (in :data:`SCOPES` order)."""
    held = set(scopes)
    return ",".join(s for s in SCOPES if s in held)
