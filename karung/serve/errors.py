"""Exceptions of the service and their mapping to HTTP answers with a stable ``code``.

Libraries raise specific exceptions; only this module knows HTTP status codes. Every error body
has the shape ``{"error": {"code": ..., "message": ...}, "request_id": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from karung.serve.fetch import FetchError
from karung.serve.logs import current_request_id
from karung.vision.errors import KarungVisionError

log = logging.getLogger("karung.serve")


class ItemError(Exception):
    """A per-item failure raised by the scoring pipeline (reported inside the answer)."""

    code: ClassVar[str] = "item_error"


class ApiError(Exception):
    """An error answered to the client as a whole (not per item)."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        if code is not None:  # a library error's own code, carried to the client unchanged
            self.code = code


class Unauthorized(ApiError):
    """No API key, or an unknown or revoked one."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """The key lacks the scope the endpoint needs."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """The addressed resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The request clashes with existing state (e.g. a duplicate key name)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """Too many items or too many bytes in one request."""

    status = 413
    code = "too_large"


class InvalidInput(ApiError):
    """The request is well-formed JSON but its content is not usable."""

    status = 422
    code = "invalid_input"


class ModelUnavailable(ApiError):
    """No model is loaded, so nothing can be scored."""

    status = 503
    code = "model_unavailable"


class BankUnavailable(ApiError):
    """The hash bank is not loaded."""

    status = 503
    code = "bank_unavailable"


def item_error(exc: BaseException) -> dict[str, str]:
    """``{code, message}`` of a per-item failure; unknown exceptions become ``internal_error``."""
    if isinstance(exc, FetchError | KarungVisionError | ApiError | ItemError):
        return {"code": exc.code, "message": str(exc)}
    return {"code": "internal_error", "message": "internal error while scoring this item"}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {
        "error": {"code": code, "message": message, **extra},
        "request_id": current_request_id(),
    }


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)

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
