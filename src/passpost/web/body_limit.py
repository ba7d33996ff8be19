"""Request body caps, enforced while the body is read, before authentication and parsing.

A pure ASGI middleware: FastAPI parses declared bodies before any dependency (the
credentials check included) runs, so a cap inside a route would come too late. A declared
``Content-Length`` above the cap is refused before a byte is read; a chunked body is
counted as it streams in and refused as soon as it passes the cap. Nothing is buffered
here: the chunks go on to the application as they arrive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passpost.config import Settings, get_settings
from passpost.errors import PayloadTooLarge, error_body

KIB = 1024
MIB = 1024 * KIB
JSON_LIMIT = 1 * MIB
# Wallet sends a push token or a few log lines; a .p12 or .cer is at most 64 KiB.
PASSKIT_LIMIT = 256 * KIB
CERTIFICATE_LIMIT = 256 * KIB


def _uploads(settings: Settings) -> int:
    return settings.max_upload_bytes


@dataclass(frozen=True)
class BodyRule:
    """Bodies of paths matching ``pattern`` may be at most ``limit(settings)`` bytes."""

    pattern: re.Pattern[str]
    limit: Callable[[Settings], int]


def _rule(pattern: str, limit: int | Callable[[Settings], int]) -> BodyRule:
    size = limit if callable(limit) else (lambda _settings, n=limit: n)
    return BodyRule(re.compile(pattern), size)


RULES: tuple[BodyRule, ...] = (
    _rule(r"^/api/v1/message/pass/import(/update)?/?$", _uploads),
    _rule(r"^/api/v1/audience/import/?$", _uploads),
    _rule(r"^/api/v1/passcerts(/|$)", CERTIFICATE_LIMIT),
    # The console's forms that carry the same files as the API calls above.
    _rule(r"^/console/(send(/check)?|audience/import)/?$", _uploads),
    _rule(r"^/console/certificates/?$", CERTIFICATE_LIMIT),
    _rule(r"^/api/v1/(devices/|log/?$)", PASSKIT_LIMIT),
)


def body_limit(path: str, settings: Settings) -> int:
    """The largest body, in bytes, accepted on ``path`` (1 MiB unless a rule says more)."""
    for rule in RULES:
        if rule.pattern.match(path):
            return rule.limit(settings)
    return JSON_LIMIT


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit} bytes.",
        error_code="PAYLOAD_TOO_LARGE",
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    """413 ``PAYLOAD_TOO_LARGE`` for any body above its route's cap (see ``RULES``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], get_settings())
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit)
            return
        await _CappedRequest(self.app, limit, receive, send).run(scope)


class _CappedRequest:
    """One request whose body is counted as it is received."""

    def __init__(self, app: ASGIApp, limit: int, receive: Receive, send: Send) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.response_started = False
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _too_large(self.limit)
        return message

    async def send(self, message: Message) -> None:
        # Once the cap is passed, whatever the application answers (a framework's 400 for
        # an unreadable body, say) is replaced by the 413.
        if self.exceeded:
            return
        self.response_started = True
        await self._send(message)

    async def run(self, scope: Scope) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except PayloadTooLarge:
            if not self.exceeded:
                raise
        if self.exceeded and not self.response_started:
            await _send_413(self._send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    error = _too_large(limit)
    body = json.dumps(error_body(error.message, error.error_code))
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
