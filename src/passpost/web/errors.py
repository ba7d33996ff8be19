"""Map errors to the SPEC's error shape: ``{"id": "-1", "message": ..., "errorCode": ...}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from passpost.errors import PasspostError, TooManyRequests

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    410: "GONE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BAD_REQUEST",
}


def error_body(message: str, error_code: str) -> dict[str, str]:
    """The one error shape every endpoint answers with."""
    return {"id": "-1", "message": message, "errorCode": error_code}


def error_response(
    status: int, message: str, error_code: str, *, extra: Mapping[str, Any] | None = None
) -> JSONResponse:
    """A JSON error response in the SPEC's shape (``extra`` keys added, never replacing)."""
    # Never a Basic challenge: a browser would prompt, then send the cached password with
    # requests other sites make (CSRF). Clients send Basic credentials unasked.
    headers = {"WWW-Authenticate": 'Bearer realm="passpost"'} if status == 401 else None
    body: dict[str, Any] = error_body(message, error_code)
    body.update((key, value) for key, value in (extra or {}).items() if key not in body)
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(PasspostError)
    async def _passpost(_: Request, exc: PasspostError) -> JSONResponse:
        response = error_response(exc.status_code, exc.message, exc.error_code, extra=exc.extra)
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"Invalid request: {where or 'body'}: {first.get('msg', 'invalid value')}."
        return error_response(400, message, "INVALID_REQUEST")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        status = 400 if exc.status_code == 422 else exc.status_code
        return error_response(status, str(exc.detail).rstrip(".") + ".", code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "Internal server error.", "INTERNAL_ERROR")
