"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.exceptions import AuthenticationError, PermissionDeniedError, RateLimitedError
from graph.exceptions import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidInputError,
    KgrError,
    ModelBusyError,
    ModelNotReadyError,
    NotFoundError,
    PayloadTooLargeError,
)

log = logging.getLogger("kgr.api")

RETRY_AFTER_S = 5

# Order matters only for subclasses; the first matching class wins.
STATUS_BY_ERROR: list[tuple[type[KgrError], int, str]] = [
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (InvalidInputError, 422, "invalid_input"),
    (ModelBusyError, 409, "model_busy"),
    (ConflictError, 409, "conflict"),
    (ModelNotReadyError, 409, "model_not_ready"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (RateLimitedError, 429, "rate_limited"),
    (DatabaseUnavailableError, 503, "database_unavailable"),
]


def error_body(code: str, message: str, details: object | None = None) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def kgr_error_response(exc: KgrError) -> JSONResponse:
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            headers = {}
            if status == 503:
                headers["Retry-After"] = str(RETRY_AFTER_S)
            if isinstance(exc, RateLimitedError):
                headers["Retry-After"] = str(exc.retry_after_s)
            if status == 401:
                headers["WWW-Authenticate"] = "ApiKey"
            return JSONResponse(
                error_body(code, exc.message, exc.details), status_code=status, headers=headers
            )
    log.exception("unmapped kgr error", exc_info=exc)
    return JSONResponse(error_body("internal_error", exc.message), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KgrError)
    async def _kgr_error(_: Request, exc: KgrError) -> JSONResponse:
        return kgr_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg")}
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['location']}: {p['message']}" for p in problems)
        return JSONResponse(
            error_body("invalid_request", message or "invalid request", problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
