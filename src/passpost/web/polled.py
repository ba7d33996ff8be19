"""The PassKit calls Wallet polls, answered before the middleware stack and the router.

Wallet polls ``GET /api/v1/passes/{type}/{serial}`` and ``GET /api/v1/devices/{device}/
registrations/{type}`` far more often than anything else is called. Through FastAPI each
call paid its router and dependency injection, five middlewares, a worker-thread hop and
the ORM: ~300 µs of CPU where a bare server spends ~35 (README, "Speed"). Here the two are
matched first and answered with ``passkit.polls`` (the same functions the FastAPI routes,
kept for the OpenAPI document, call); every other request, and every other method on these
paths, goes on to the stack unchanged.

What the middlewares do for every call is done here for these two, with the same parts and
in the same order:

- timed and counted under the route template (``passpost.metrics``, as ``web.metrics``;
  a refusal that comes before routing counts as ``<unmatched>`` there too);
- the ``passkit`` group's rate limit, on the same counters (``RateLimits``);
- the body cap: a declared Content-Length above it is a 413 (these GETs read no body);
- the security headers (``web.headers``);
- client errors in the one shape; anything unexpected goes on to the server-error handler.

The cross-site check concerns state-changing methods only, never a GET.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passpost.config import get_settings
from passpost.errors import PasspostError, error_response
from passpost.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from passpost.passkit import polls
from passpost.passkit.polls import PollState
from passpost.web.body_limit import _declared_length, _send_413, body_limit
from passpost.web.headers import _add_headers
from passpost.web.metrics import UNMATCHED
from passpost.web.rate_limit import RateLimits

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


def install(app: FastAPI, *, limits: RateLimits) -> PollState:
    """Add the fast path to ``app`` (call it after every other middleware: it goes first)."""
    state = PollState()
    app.state.passkit_polls = state
    app.add_middleware(PolledPassKit, state=state, limits=limits)
    return state


class PolledPassKit:
    """Answers the two polled GETs; passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, state: PollState, limits: RateLimits) -> None:
        self.app = app
        self.state = state
        self.limits = limits
        self._timers: dict[str, Histogram] = {}
        self._counters: dict[tuple[str, int], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = _route_path(scope)
            if path.startswith(PREFIX):
                for pattern, route, answerer in ROUTES:
                    if found := pattern.fullmatch(path):
                        await self._serve(scope, receive, send, route, answerer, found.groups())
                        return
        elif scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        answerer: Answerer,
        params: tuple[str, ...],
    ) -> None:
        started = time.perf_counter()
        status = 500
        label = UNMATCHED

        async def send_secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _add_headers(MutableHeaders(scope=message), docs=False)
            await send(message)

        try:
            refusal = self.limits.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_secured)
                return
            limit = body_limit(scope["path"], get_settings())
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                await _send_413(send_secured, limit)
                return
            label = route.path
            scope["route"] = route
            try:
                answer = await answerer(self.state, scope, *params)
            except PasspostError as exc:
                await _error(exc)(scope, receive, send_secured)
                return
            headers = list(answer.headers)
            if answer.status not in (204, 304):
                headers.append((b"content-length", str(len(answer.body)).encode()))
            start = {"type": "http.response.start", "status": answer.status, "headers": headers}
            await send_secured(start)
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            self._observe(label, status, time.perf_counter() - started)

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

    def _closing(self, send: Send) -> Send:
        async def send_and_close(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                self.state.reads.close()
            await send(message)

        return send_and_close


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
