"""Typed errors of the hash bank, each with a stable ``code`` (mapped to HTTP only at the edge)."""

from __future__ import annotations

from typing import ClassVar


class BankError(Exception):
    """Base class of every hash bank error."""

    code: ClassVar[str] = "bank_error"


class EntryNotFound(BankError, LookupError):
    """No entry has the given id."""

    code = "entry_not_found"


class BankNotFound(BankError, LookupError):
    """No bank has the given name."""

    code = "bank_not_found"


class InvalidBankSetting(BankError, ValueError):
    """A bank name or threshold is out of range."""

    code = "invalid_bank_setting"


class InvalidEntry(BankError, ValueError):
    """An entry to add has no usable hash or a malformed field."""

    code = "invalid_entry"


class MalformedCsvRow(BankError, ValueError):
    """A row of an imported hash list is malformed; ``line`` is its 1-based line number."""

    code = "malformed_csv_row"

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
