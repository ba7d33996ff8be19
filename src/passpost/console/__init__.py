"""The operator console: server-rendered pages (Jinja2 + htmx) over the domains' services.

It sits above the domains: it imports them; only ``web.app`` imports it (``install``).
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from passpost.console.render import HERE, page
from passpost.console.session import CsrfRefused, LoginRequired
from passpost.errors import PasspostError

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the console's pages, its static files and its error pages on ``app``."""
    from passpost.console import admin, requests, send

    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (requests, send, admin):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _: LoginRequired) -> Response:
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": "/console/login"})
        return RedirectResponse("/console/login", status_code=303)

    api_handler = app.exception_handlers[PasspostError]

    @app.exception_handler(PasspostError)
    async def _service_error(request: Request, exc: PasspostError) -> Response:
        # Console pages show a service's refusal as a page; the API keeps its JSON shape.
        if request.url.path.startswith("/console/"):
            return console_error(request, exc, exc.status_code)
        answer = api_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> HTMLResponse:
        return page(
            request,
            "error.html",
            operator=None,
            title="Form expired",
            message="This form was refused: its security token is missing or out of date. "
            "Reload the page and try again.",
            status_code=403,
        )


def console_error(request: Request, exc: PasspostError, status_code: int) -> HTMLResponse:
    """A service error on a console page, as a page rather than the API's JSON."""
    return page(
        request,
        "error.html",
        operator=None,
        title="Not possible",
        message=exc.message,
        status_code=status_code,
    )
