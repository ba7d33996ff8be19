"""Security headers on every answer (SPEC §15), added by one pure ASGI middleware.

``X-Content-Type-Options: nosniff`` everywhere; JSON (which carries personal data) is
``Cache-Control: no-store`` unless the route chose its own caching; HTML pages get a
Content-Security-Policy with ``frame-ancestors 'none'`` unless the page brings its own.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI is served by passpost (web/docs.py); its page starts it with an inline script
# and it styles itself inline, with data: icons.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs",)


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(MutableHeaders(scope=message), docs=docs)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_headers(headers: MutableHeaders, *, docs: bool) -> None:
    headers["X-Content-Type-Options"] = "nosniff"
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        headers.setdefault("Cache-Control", "no-store")
    elif media_type == "text/html":
        headers.setdefault("Content-Security-Policy", DOCS_POLICY if docs else HTML_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
