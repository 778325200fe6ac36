"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from api.exceptions import AuthenticationError, PermissionDeniedError, RateLimitedError
from core.errors import (
    ConflictError,
    InvalidInputError,
    KgrError,
    ModelBusyError,
    ModelNotReadyError,
    NotFoundError,
    PayloadTooLargeError,
    TooManyJobsError,
    TrainingDivergedError,
    UnavailableError,
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
    (TooManyJobsError, 429, "too_many_jobs"),
    (RateLimitedError, 429, "rate_limited"),
    (UnavailableError, 503, "database_unavailable"),
    # the run's own numbers broke, not the request: a server-side failure, named
    (TrainingDivergedError, 500, "training_diverged"),
]


class ErrorInfo(BaseModel):
    """What went wrong: a stable code, a message for people and, for some codes, details
    (``invalid_request``: each problem's location and message)."""

    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["unknown domain 'nope'"])
    details: Any | None = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be read: not JSON, or a broken multipart upload "
         "(malformed_request)",
    401: "No API key, or an unknown or revoked one (unauthenticated)",
    403: "The key's role or domains do not allow this (forbidden)",
    404: "Unknown domain, entity, model, migration or job (not_found)",
    409: "Conflicts with the current state: a held lock, a running job, a model not trained "
         "yet (conflict, model_busy, model_not_ready)",
    413: "The upload is over the size limit (payload_too_large)",
    422: "The request does not validate (invalid_request, invalid_input)",
    429: "Over the key's requests a second or questions at once; see Retry-After "
         "(rate_limited)",
    503: "Neo4j cannot be reached; see Retry-After (database_unavailable)",
}
# Paths the rate limit and the key check leave alone (api.limits.EXEMPT_PATHS's routes).
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
NO_DATABASE_PATHS = frozenset({"/healthz", "/metrics"})


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, with kgr's error body."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
            for status in statuses}


def _needs_key(dependant: Dependant) -> bool:
    """Whether a route's dependencies (at any depth) read the API key."""
    return any(isinstance(d.call, SecurityBase) or _needs_key(d)
               for d in dependant.dependencies)


def document_errors(routes: Iterable[BaseRoute]) -> None:
    """Give every route the error answers it can give, on top of what it declares itself
    (``responses=errors(404, ...)``): 422 with kgr's body instead of FastAPI's own model,
    401/403 where a key is needed, 429 wherever the rate limit applies, and 503 wherever
    Neo4j is asked. Called on each router's routes before it is included (idempotent)."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        statuses: set[int] = {422}
        if _needs_key(route.dependant):
            statuses |= {401, 403}
        if route.body_field is not None:
            statuses.add(400)  # a body that is not JSON (or not multipart) cannot be read
        if route.path not in UNLIMITED_PATHS:
            statuses.add(429)
        if route.path not in NO_DATABASE_PATHS:
            statuses.add(503)
        if route.path in NO_DATABASE_PATHS or (route.path in UNLIMITED_PATHS
                                                and not route.dependant.query_params):
            statuses.discard(422)
        for status, response in errors(*sorted(statuses)).items():
            if status not in route.responses:
                route.responses[status] = response
                # what FastAPI derives from ``responses`` when it makes a route
                route.response_fields[status] = create_model_field(
                    name=f"Response_{status}_{route.unique_id}", type_=ErrorBody,
                    mode="serialization")


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
        code = {400: "malformed_request", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
