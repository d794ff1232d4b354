"""The one place where exceptions become HTTP responses, all in the shape {"error": {code, message, details}}."""

from __future__ import annotations

import logging
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexes import (
    ArtifactError,
    CollectionLockedError,
    DimensionMismatchError,
    IndexConfigError,
    IndexesError,
    InvalidInputError,
    ReadOnlyError,
    UnknownDocumentError,
)
from service.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigurationError,
    DatasetError,
    DocumentNotFoundError,
    EncoderError,
    EncoderMismatchError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    ForbiddenError,
    GlassboxError,
    InvalidRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnauthorizedError,
)

logger = logging.getLogger(__name__)

SERVICE_STATUS: dict[type[GlassboxError], int] = {
    InvalidRequestError: 422,
    DatasetError: 422,
    CollectionNotFoundError: 404,
    DocumentNotFoundError: 404,
    ExperimentNotFoundError: 404,
    CollectionExistsError: 409,
    ExperimentExistsError: 409,
    EncoderMismatchError: 409,
    EncoderError: 503,
    ConfigurationError: 500,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    PayloadTooLargeError: 413,
    RequestTimeoutError: 504,
}
# RFC 9110: a 401 names the scheme to use; keys also travel in X-API-Key (the OpenAPI schema declares both)
SERVICE_HEADERS: dict[type[GlassboxError], dict[str, str]] = {
    UnauthorizedError: {"WWW-Authenticate": 'Bearer realm="glassbox"'},
}
INDEXES_STATUS: dict[type[IndexesError], tuple[int, str]] = {
    IndexConfigError: (422, "invalid_index_config"),
    InvalidInputError: (422, "invalid_request"),
    DimensionMismatchError: (422, "dimension_mismatch"),
    UnknownDocumentError: (404, "document_not_found"),
    CollectionLockedError: (409, "collection_locked"),
    ReadOnlyError: (409, "read_only"),
    ArtifactError: (500, "artifact_error"),
}
_MAX_SHOWN_VALUE = 80


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
        headers=headers,
    )


def _status_for(table: dict[type[Any], Any], exc: Exception, default: Any) -> Any:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return default


def _shown(value: Any) -> Any:
    """The bad value as it can go back in JSON: small JSON values as they are, anything else clipped text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else f"{text[:_MAX_SHOWN_VALUE]}... ({len(text)} chars)"


def glassbox_error_response(exc: GlassboxError) -> JSONResponse:
    """The response for a service error (also used by the ASGI limits middleware, outside the handlers)."""
    status = _status_for(SERVICE_STATUS, exc, 500)
    return error_response(status, exc.code, exc.message, exc.details, _status_for(SERVICE_HEADERS, exc, None))


async def _glassbox_error(_: Request, exc: Exception) -> JSONResponse:
    return glassbox_error_response(cast(GlassboxError, exc))


async def _indexes_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = _status_for(INDEXES_STATUS, exc, (500, "index_error"))
    if status >= 500:
        logger.exception("index failure", exc_info=exc)
    return error_response(status, code, str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, exc)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        reason = errors[0].get("ctx", {}).get("error", "invalid JSON")
        return error_response(400, "malformed_json", f"request body is not valid JSON: {reason}")
    if any(isinstance(error.get("input"), bytes) and error.get("loc") == ("body",) for error in errors):
        return error_response(
            400, "malformed_json", "request body is not a JSON object (send Content-Type: application/json)"
        )
    problems = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        problem: dict[str, Any] = {"field": location, "message": error.get("msg", "invalid")}
        if "input" in error:
            problem["value"] = _shown(error["input"])
        problems.append(problem)
    first = problems[0]
    message = f"{first['field']}: {first['message']}"
    if "value" in first:
        message += f" (got {first['value']!r})"
    if len(problems) > 1:
        message += f"; and {len(problems) - 1} more"
    return error_response(422, "validation_error", message, {"errors": problems})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, exc)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to the one JSON error shape."""
    app.add_exception_handler(GlassboxError, _glassbox_error)
    app.add_exception_handler(IndexesError, _indexes_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
