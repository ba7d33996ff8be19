"""The PassKit calls Wallet polls, answered before FastAPI's layers, the middlewares and the router.

Wallet polls ``GET /api/v1/passes/{type}/{serial}`` and ``GET /api/v1/devices/{device}/
registrations/{type}`` far more often than anything else is called. Through FastAPI each
call paid its router and dependency injection, five middlewares, a worker-thread hop and
the ORM: ~300 µs of CPU where a bare server spends ~35 (README, "Speed"). Here the two are
matched first and answered with ``passkit.polls`` (the same functions the FastAPI routes,
kept for the OpenAPI document, call); every other request, and every other method on these
paths, goes on to ``FastAPI.__call__`` unchanged (``PasspostAPI``).

What the middlewares do for every call is done here for these two, with the same parts and
in the same order:

- timed and counted under the route template (``passpost.metrics``, as ``web.metrics``;
  a refusal that comes before routing counts as ``<unmatched>`` there too);
- the ``passkit`` group's rate limit, on the same counters (``RateLimits``);
- the body cap: a declared Content-Length above it is a 413 (these GETs read no body);
- the security headers (``web.headers``);
- client errors in the one shape; anything unexpected is answered by the app's 500 handler
  and raised on to the server's log, as Starlette's ``ServerErrorMiddleware`` does.

The cross-site check concerns state-changing methods only, never a GET.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import parse_qsl

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from passpost.config import get_settings
from passpost.errors import PasspostError, error_response
from passpost.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from passpost.passkit import polls
from passpost.passkit.polls import PollState
from passpost.web.body_limit import _declared_length, _send_413, body_limit
from passpost.web.headers import _add_headers
from passpost.web.metrics import UNMATCHED
from passpost.web.rate_limit import RateLimits, group_of

PREFIX = "/api/v1/"
# As Starlette matches them: a path parameter is one non-empty segment.
_LATEST = re.compile(r"/api/v1/passes/([^/]+)/([^/]+)")
_SERIALS = re.compile(r"/api/v1/devices/([^/]+)/registrations/([^/]+)")

Answerer = Callable[[PollState, Scope, str, str], Awaitable[polls.Answer]]


@dataclass(frozen=True, slots=True)
class Route:
    """What ``scope["route"]`` holds for a call answered here (metrics read ``path``)."""

    path: str
    name: str


async def _latest(state: PollState, scope: Scope, pass_type: str, serial: str) -> polls.Answer:
    authorization = if_modified_since = None
    # As Starlette's Headers.get: the first of a repeated header counts.
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-modified-since" and if_modified_since is None:
            if_modified_since = value.decode("latin-1")
    return await polls.latest_pass(
        state.reads,
        state.cache,
        url=state.database_url(),
        pass_type_identifier=pass_type,
        serial_number=serial,
        authorization=authorization,
        if_modified_since=if_modified_since,
    )


async def _serials(state: PollState, scope: Scope, device: str, pass_type: str) -> polls.Answer:
    tag = None
    query = scope["query_string"].decode("latin-1")
    if query:
        # As Starlette reads a query parameter: the last of its values.
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == "passesUpdatedSince":
                tag = value
    return await polls.serials_since(
        state.reads,
        url=state.database_url(),
        device_library_identifier=device,
        pass_type_identifier=pass_type,
        passes_updated_since=tag,
    )


ROUTES: tuple[tuple[re.Pattern[str], Route, Answerer], ...] = (
    (
        _LATEST,
        Route("/api/v1/passes/{pass_type_identifier}/{serial_number}", "latest_pass"),
        _latest,
    ),
    (
        _SERIALS,
        Route(
            "/api/v1/devices/{device_library_identifier}/registrations/{pass_type_identifier}",
            "serials_since",
        ),
        _serials,
    ),
)


class PasspostAPI(FastAPI):
    """FastAPI, with the two polled GETs answered before any of its own layers.

    FastAPI's and Starlette's outer layers (telemetry check, server-error and body-limit
    wrappers, the scope's ``app``) cost as much as a remembered answer; the fast path does
    what they would do for these two calls itself. Every other request and the lifespan go
    through ``FastAPI.__call__`` unchanged. FastAPI's native OpenTelemetry spans (which
    passpost does not configure) are not made for the polled calls.
    """

    polled: PolledPassKit | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        polled = self.polled
        if polled is not None:
            if self.root_path:
                scope["root_path"] = self.root_path
            if scope["type"] == "http":
                found = polled.match(scope)
                if found is not None:
                    scope["app"] = self
                    await polled.serve(scope, receive, send, *found)
                    return
            elif scope["type"] == "lifespan":
                send = polled.closing(send)
        await super().__call__(scope, receive, send)


def install(app: PasspostAPI, *, limits: RateLimits) -> PollState:
    """Answer the polled GETs of ``app`` first (with ``limits``, the stack's counters)."""
    state = PollState()
    app.state.passkit_polls = state
    app.polled = PolledPassKit(app, state=state, limits=limits)
    return state


Found = tuple[Route, Answerer, tuple[str, ...]]


class PolledPassKit:
    """Matches and answers the two polled GETs."""

    def __init__(self, app: FastAPI, *, state: PollState, limits: RateLimits) -> None:
        self.app = app
        self.state = state
        self.limits = limits
        self._group = group_of(PREFIX + "passes/")
        self._timers: dict[str, Histogram] = {}
        self._counters: dict[tuple[str, int], Counter] = {}

    def match(self, scope: Scope) -> Found | None:
        """The route, its answerer and path parameters if ``scope`` is a polled GET."""
        if scope["method"] == "GET":
            path = _route_path(scope)
            if path.startswith(PREFIX):
                for pattern, route, answerer in ROUTES:
                    if found := pattern.fullmatch(path):
                        return route, answerer, found.groups()
        return None

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        answerer: Answerer,
        params: tuple[str, ...],
    ) -> None:
        """Answer as the middleware stack and the route would (module docstring)."""
        started = time.perf_counter()
        status = 500
        label = UNMATCHED
        answered = False

        async def send_secured(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                _add_headers(MutableHeaders(scope=message), docs=False)
            await send(message)

        try:
            # Below no root path, a polled path is in the passkit group (``group_of``).
            group = self._group if scope.get("root_path", "") == "" else None
            refusal = self.limits.refusal(scope, group)
            if refusal is not None:
                await refusal(scope, receive, send_secured)
                return
            declared = _declared_length(scope)
            if declared is not None:
                limit = body_limit(scope["path"], get_settings())
                if declared > limit:
                    await _send_413(send_secured, limit)
                    return
            label = route.path
            scope["route"] = route
            try:
                answer = await answerer(self.state, scope, *params)
            except PasspostError as exc:
                await _error(exc)(scope, receive, send_secured)
                return
            status, answered = answer.status, True
            start = {"type": "http.response.start", "status": status, "headers": _wire(answer)}
            await send(start)
            await send({"type": "http.response.body", "body": answer.body})
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: the app's 500 handler answers, if nothing
            # was sent yet, and the error goes on to the server's log.
            if not answered:
                response = await self._server_error(Request(scope, receive), exc)
                await response(scope, receive, send_secured)
            raise
        finally:
            self._observe(label, status, time.perf_counter() - started)

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        handler = self.app.exception_handlers.get(Exception) or self.app.exception_handlers.get(500)
        if handler is None:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if inspect.iscoroutinefunction(handler):
            response = await handler(request, exc)
        else:
            response = await run_in_threadpool(handler, request, exc)
        return cast(Response, response)

    def _observe(self, route: str, status: int, seconds: float) -> None:
        # The children are looked up once: ``labels()`` takes a lock and builds a key.
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = HTTP_REQUEST_SECONDS.labels("GET", route)
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._counters[route, status] = HTTP_REQUESTS.labels(
                "GET", route, str(status)
            )
        timer.observe(seconds)
        counter.inc()

    def closing(self, send: Send) -> Send:
        """``send`` for the lifespan: the kept connections are given back at shutdown."""

        async def send_and_close(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.state.reads.close()
            await send(message)

        return send_and_close


def _wire(answer: polls.Answer) -> list[tuple[bytes, bytes]]:
    """The answer's headers as sent: content-length and the security headers added."""
    length = None if answer.status in (204, 304) else len(answer.body)
    return list(_secured(answer.headers, length))


@lru_cache(maxsize=4096)
def _secured(
    headers: tuple[tuple[bytes, bytes], ...], length: int | None
) -> tuple[tuple[bytes, bytes], ...]:
    # Few distinct header sets (a Last-Modified per version): worked out once each.
    message: Message = {"headers": list(headers)}
    if length is not None:
        message["headers"].append((b"content-length", str(length).encode()))
    _add_headers(MutableHeaders(scope=message), docs=False)
    return tuple(message["headers"])


def _error(exc: PasspostError) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The error in the one shape, as ``web.errors`` answers it."""
    response = error_response(exc.status_code, exc.message, exc.error_code, extra=exc.extra)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _route_path(scope: Scope) -> str:
    # As Starlette's router sees it (starlette._utils.get_route_path): below the root path.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
