"""Cross-site request refusal for calls that change things (CSRF).

A browser that holds credentials for passpost (a typed-in Basic password, later a console
session cookie) would attach them to a form another site posts. Browsers name the page
that made a request in ``Origin`` (and ``Sec-Fetch-Site``): a state-changing call from any
origin other than passpost's own is refused with 403 ``CROSS_ORIGIN_REQUEST``. Clients that
are not browsers (curl, Wallet, Twilio) send no ``Origin`` and are not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from passpost.config import get_settings
from passpost.errors import error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(headers: Headers, public_url: str) -> bool:
    """False when a browser says the request comes from another site."""
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    origin = origin.strip().lower()
    host = headers.get("host", "").lower()
    # The Host a browser sends is the site it talks to, which a page elsewhere cannot set.
    allowed = {_origin_of(public_url), f"http://{host}", f"https://{host}"}
    return origin != "null" and origin in allowed


class OriginCheckMiddleware:
    """403 for a state-changing request that a browser sent from another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _allowed(scope):
            response = JSONResponse(
                error_body("Cross-site requests may not change anything.", "CROSS_ORIGIN_REQUEST"),
                status_code=403,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _allowed(scope: Scope) -> bool:
    if scope["method"] in SAFE_METHODS:
        return True
    return same_origin(Headers(scope=scope), get_settings().public_url)
