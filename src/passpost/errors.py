"""The one exception hierarchy: every error a client can cause carries a stable errorCode.

    PasspostError            400 BAD_REQUEST (the base; ``error_code`` says what exactly)
     ├── BadRequest          400
     ├── Unauthorized        401 UNAUTHORIZED
     ├── Forbidden           403 FORBIDDEN
     ├── NotFound            404 NOT_FOUND
     ├── Conflict            409 CONFLICT
     ├── Gone                410 GONE
     ├── PayloadTooLarge     413 PAYLOAD_TOO_LARGE
     └── UnsupportedMediaType 415 UNSUPPORTED_MEDIA_TYPE

It is mapped to HTTP exactly once, in ``passpost.web.errors``; ``error_body`` is the one
error shape every answer uses (routers that answer an error themselves use
``error_response``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


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


class PasspostError(Exception):
    """Base class: ``error_code`` is stable UPPER_SNAKE, ``message`` is one clear sentence.

    ``extra`` adds keys to the error body beside ``id``/``message``/``errorCode`` (e.g. every
    finding of an invalid pass); it never replaces them.
    """

    status_code = 400
    error_code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})
        if error_code is not None:
            self.error_code = error_code


class BadRequest(PasspostError):
    status_code = 400


class Unauthorized(PasspostError):
    status_code = 401
    error_code = "UNAUTHORIZED"


class Forbidden(PasspostError):
    status_code = 403
    error_code = "FORBIDDEN"


class NotFound(PasspostError):
    status_code = 404
    error_code = "NOT_FOUND"


class Conflict(PasspostError):
    status_code = 409
    error_code = "CONFLICT"


class Gone(PasspostError):
    status_code = 410
    error_code = "GONE"


class PayloadTooLarge(PasspostError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(PasspostError):
    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


# -- the error shape in the OpenAPI document -------------------------------------------------


def _example(message: str, code: str) -> dict[str, object]:
    return {"summary": code, "value": {"id": "-1", "message": message, "errorCode": code}}


ERROR_SCHEMA = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["id", "message", "errorCode"],
    "properties": {
        "id": {"type": "string", "enum": ["-1"]},
        "message": {"type": "string", "description": "One sentence saying what is wrong."},
        "errorCode": {"type": "string", "description": "Stable UPPER_SNAKE code."},
    },
}


def error_responses(**examples: list[tuple[str, str]]) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for the error shape: ``{"400": [(message, code), ...], ...}``."""
    return {
        int(status.removeprefix("e")): {
            "description": "Error (always this shape).",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorBody"},
                    "examples": {code: _example(message, code) for message, code in pairs},
                }
            },
        }
        for status, pairs in examples.items()
    }


class TooManyRequests(PasspostError):
    """Too many requests or credential failures; ``retry_after`` seconds until the next try."""

    status_code = 429
    error_code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: int, error_code: str | None = None) -> None:
        super().__init__(message, error_code=error_code)
        self.retry_after = max(1, retry_after)
