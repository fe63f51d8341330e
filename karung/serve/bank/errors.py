"""Typed errors of the hash bank, each with a stable ``code`` (see
:class:`karung.errors.KarungError`); the service answers 422, or 404 for what does not exist,
and the CLI exits 2."""

from __future__ import annotations

from karung.errors import KarungError


class BankError(KarungError, code="bank_error", status=422, exit_code=2):
    """Base class of every hash bank error."""


class EntryNotFound(BankError, LookupError, code="entry_not_found", status=404):
    """No entry has the given id."""


class BankNotFound(BankError, LookupError, code="bank_not_found", status=404):
    """No bank has the given name."""


class InvalidBankSetting(BankError, ValueError, code="invalid_bank_setting"):
    """A bank name or threshold is out of range."""


class InvalidEntry(BankError, ValueError, code="invalid_entry"):
    """An entry to add has no usable hash or a malformed field."""


class MalformedCsvRow(BankError, ValueError, code="malformed_csv_row"):
    """A row of an imported hash list is malformed; ``line`` is its 1-based line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
