"""Exceptions of the service and their mapping to HTTP answers with a stable ``code``.

Libraries raise subclasses of :class:`karung.errors.KarungError`, each with its stable ``code``
and HTTP status; this module maps any of them to an answer (whole-request errors) or to an
item's ``error`` (per-item failures) without listing types. Every error body has the shape
``{"error": {"code": ..., "message": ...}, "request_id": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from karung.errors import KarungError
from karung.serve.logs import current_request_id

log = logging.getLogger("karung.serve")


class ServeError(KarungError, code="serve_error"):
    """Base class of the service's own errors (the scoring pipeline, the batcher, the API)."""


class ItemError(ServeError, code="item_error", status=422):
    """A per-item failure raised by the scoring pipeline (reported inside the answer)."""


class ServiceUnavailable(ServeError, code="shutting_down", status=503):
    """The service is stopping (or its model worker is gone): retry on another replica."""


class ApiError(ServeError, code="bad_request", status=400):
    """An error answered to the client as a whole (not per item)."""

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        if code is not None:  # a library error's own code, carried to the client unchanged
            self.code = code

    @property
    def status(self) -> int:
        """The HTTP status of the answer."""
        return self.http_status


class Unauthorized(ApiError, code="unauthorized", status=401):
    """No API key, or an unknown or revoked one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError, code="forbidden", status=403):
    """The key lacks the scope the endpoint needs."""


class NotFound(ApiError, code="not_found", status=404):
    """The addressed resource does not exist."""


class Conflict(ApiError, code="conflict", status=409):
    """The request clashes with existing state (e.g. a duplicate key name)."""


class PayloadTooLarge(ApiError, code="too_large", status=413):
    """Too many items or too many bytes in one request."""


class InvalidInput(ApiError, code="invalid_input", status=422):
    """The request is well-formed JSON but its content is not usable."""


class ModelUnavailable(ApiError, code="model_unavailable", status=503):
    """No model is loaded, so nothing can be scored."""


class BankUnavailable(ApiError, code="bank_unavailable", status=503):
    """The hash bank is not loaded."""


def item_error(exc: BaseException) -> dict[str, str]:
    """``{code, message}`` of a per-item failure: any :class:`KarungError` reports its own
    code; unknown exceptions become ``internal_error`` (their text may hold internals)."""
    if isinstance(exc, KarungError):
        return exc.to_dict()
    return {"code": "internal_error", "message": "internal error while scoring this item"}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {
        "error": {"code": code, "message": message, **extra},
        "request_id": current_request_id(),
    }


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(KarungError)
    async def _karung_error(_: Request, exc: KarungError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return JSONResponse(error_body(exc.code, str(exc)), exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        body = error_body("validation_error", "request does not match the schema", details=details)
        return JSONResponse(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code == 400:  # the framework could not parse the body (JSON, multipart)
            body = error_body("validation_error", f"the body cannot be parsed: {exc.detail}")
            return JSONResponse(body, 422)
        return JSONResponse(
            error_body(code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)
