"""The one root of karung's errors: every room subclasses :class:`KarungError`.

Each error class carries a stable ``code`` (what API clients, CLI users and logs see; never
parsed from messages), the HTTP status the service answers with when the error reaches the
edge as a whole-request failure, and the exit status of the CLI. A room declares its errors in
one line each, e.g. ``class EmptyInput(ImageDecodeError, code="empty_input"):``; the edges
(``karung.serve.errors`` and ``karung.cli.main``) map any of them without listing types.

This module imports nothing from karung, so the lowest layer (``karung.vision``) can use it.
"""

from __future__ import annotations

from typing import Any


class KarungError(Exception):
    """Base class of every error karung raises on purpose.

    Class keywords set the class attributes: ``code`` (stable string), ``status`` (HTTP
    status at the service edge) and ``exit_code`` (the CLI's exit status).
    """

    code: str = "karung_error"
    http_status: int = 500
    exit_code: int = 1

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        status: int | None = None,
        exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.http_status = status
        if exit_code is not None:
            cls.exit_code = exit_code

    def to_dict(self) -> dict[str, str]:
        """``{code, message}``: the error object of API answers and CLI JSON lines."""
        return {"code": self.code, "message": str(self)}
