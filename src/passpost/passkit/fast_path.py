"""The polled PassKit GETs answered straight from ASGI, before FastAPI's router.

Wallet polls ``GET /api/v1/passes/{type}/{serial}`` and ``GET /api/v1/devices/{device}/
registrations/{type}`` far more often than anything else is called. Through FastAPI each
call paid the router, dependency injection, a worker-thread hop and the ORM: several times
the cost of the read itself. This middleware matches the two paths and answers them with
``passkit.polls`` (the same functions the FastAPI routes, kept for the OpenAPI document,
call). Every other request, and every other method on these paths, goes on unchanged.

It sits inside passpost's other middlewares (``web.app``), so these calls are timed and
counted under their route templates, rate limited, capped and given the security headers
like every other call.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passpost.config import Settings, get_settings
from passpost.errors import PasspostError, error_response
from passpost.passkit import polls
from passpost.passkit.content_cache import ContentCache

LATEST_ROUTE = "/api/v1/passes/{pass_type_identifier}/{serial_number}"
SERIALS_ROUTE = "/api/v1/devices/{device_library_identifier}/registrations/{pass_type_identifier}"
# As Starlette matches them: a path parameter is one non-empty segment.
_LATEST = re.compile(r"/api/v1/passes/([^/]+)/([^/]+)")
_SERIALS = re.compile(r"/api/v1/devices/([^/]+)/registrations/([^/]+)")


@dataclass(frozen=True, slots=True)
class Route:
    """What ``scope["route"]`` holds for a call answered here (the metrics read ``path``)."""

    path: str
    name: str


_LATEST_ROUTE = Route(LATEST_ROUTE, "latest_pass")
_SERIALS_ROUTE = Route(SERIALS_ROUTE, "serials_since")


@dataclass
class PollState:
    """What the polled calls share in one application: where reads run, the pass bytes."""

    reads: polls.Reads = field(default_factory=polls.Reads)
    cache: ContentCache = field(default_factory=ContentCache)
    _settings: Settings | None = None
    _url: str = ""

    def database_url(self) -> str:
        """The settings' database URL (resolving it touches the file system: kept)."""
        settings = get_settings()
        if settings is not self._settings:
            self._settings, self._url = settings, settings.resolved_database_url
        return self._url


def install(app: FastAPI) -> PollState:
    """Put the fast path into ``app``'s middleware stack where it is called from."""
    state = PollState()
    app.state.passkit_polls = state
    app.add_middleware(PassKitFastPath, state=state)
    return state


class PassKitFastPath:
    """Answers the two polled GETs; passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, state: PollState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = _route_path(scope)
            if path.startswith("/api/v1/"):
                if found := _LATEST.fullmatch(path):
                    scope["route"] = _LATEST_ROUTE
                    await _respond(send, self._latest(scope, *found.groups()))
                    return
                if found := _SERIALS.fullmatch(path):
                    scope["route"] = _SERIALS_ROUTE
                    await _respond(send, self._serials(scope, *found.groups()))
                    return
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        await self.app(scope, receive, send)

    async def _latest(self, scope: Scope, pass_type: str, serial: str) -> polls.Answer:
        authorization = if_modified_since = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
        return await polls.latest_pass(
            self.state.reads,
            self.state.cache,
            url=self.state.database_url(),
            pass_type_identifier=pass_type,
            serial_number=serial,
            authorization=authorization,
            if_modified_since=if_modified_since,
        )

    async def _serials(self, scope: Scope, device: str, pass_type: str) -> polls.Answer:
        tag = None
        query = scope["query_string"].decode("latin-1")
        if query:
            # As Starlette reads a query parameter: the last of its values.
            for key, value in parse_qsl(query, keep_blank_values=True):
                if key == "passesUpdatedSince":
                    tag = value
        return await polls.serials_since(
            self.state.reads,
            url=self.state.database_url(),
            device_library_identifier=device,
            pass_type_identifier=pass_type,
            passes_updated_since=tag,
        )

    def _closing(self, send: Send) -> Send:
        async def send_and_close(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.state.reads.close()
            await send(message)

        return send_and_close


async def _respond(send: Send, pending: Awaitable[polls.Answer]) -> None:
    try:
        answer = await pending
    except PasspostError as exc:
        await _send_error(send, exc)
        return
    headers = answer.headers
    if answer.status not in (204, 304):
        headers = [*headers, (b"content-length", str(len(answer.body)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _send_error(send: Send, exc: PasspostError) -> None:
    """The error in the one shape (``passpost.errors``), as the exception handlers answer."""
    response = error_response(exc.status_code, exc.message, exc.error_code, extra=exc.extra)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _route_path(scope: Scope) -> str:
    # As Starlette's router sees it (starlette._utils.get_route_path): below the root path.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
