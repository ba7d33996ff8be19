"""Console: log in and out, the Requests list and one Request (live while in flight)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from passpost.auth import service as auth_service
from passpost.auth.deps import client_address
from passpost.console import session as console_session
from passpost.console.charts import funnel_svg
from passpost.console.render import page
from passpost.console.session import COOKIE, LOGIN_CSRF_COOKIE, ConsoleOperator, Csrf
from passpost.deps import SessionDep
from passpost.distribution import status
from passpost.distribution.service import cancel_request
from passpost.errors import PasspostError, TooManyRequests

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 20
RECIPIENTS_PAGE = 50


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/requests", status_code=303)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    token, fresh = console_session.login_csrf(request)
    response = page(request, "login.html", operator=None, title="Log in", login_csrf=token)
    if fresh:
        console_session.set_cookie(response, request, LOGIN_CSRF_COOKIE, fresh, 3600)
    return response


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the credentials like the API's login (throttled the same way); the claims
    token becomes the cookie."""
    expected, _ = console_session.login_csrf(request)
    if not request.cookies.get(LOGIN_CSRF_COOKIE) or csrf != expected:
        raise console_session.CsrfRefused()
    try:
        issued = await auth_service.login(
            session, username=username, password=password, address=client_address(request)
        )
    except PasspostError as exc:
        token, _ = console_session.login_csrf(request)
        throttled = isinstance(exc, TooManyRequests)
        refused = page(
            request,
            "login.html",
            operator=None,
            title="Log in",
            login_csrf=token,
            username=username,
            error=exc.message,
            status_code=429 if throttled else 401,
        )
        if isinstance(exc, TooManyRequests):
            refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    response = RedirectResponse("/console/requests", status_code=303)
    ttl = int((issued.claims_expires_at - datetime.now(UTC)).total_seconds())
    console_session.set_cookie(response, request, COOKIE, issued.claims_token, ttl)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    console_session.end_session(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class RequestsFilter:
    """The Requests page's query: state, the page's start, the creation dates."""

    state: Annotated[str | None, Query(max_length=20)] = None
    start: Annotated[int, Query(ge=0)] = 0
    created_from: Annotated[str | None, Query(alias="from", max_length=10)] = None
    created_to: Annotated[str | None, Query(alias="to", max_length=10)] = None


Filter = Annotated[RequestsFilter, Depends()]


def _requests_context(session: SessionDep, query: RequestsFilter) -> dict[str, Any]:
    state, start = query.state, query.start
    created_from, created_to = query.created_from, query.created_to
    listing = status.list_requests(
        session,
        start=start,
        page_size=PAGE_SIZE,
        state=state or None,
        created_from=_day(created_from),
        created_to=_day(created_to),
    )
    base = {"state": state or "", "from": created_from or "", "to": created_to or ""}

    def url(path: str, at: int) -> str:
        return f"{path}?{urlencode({**base, 'start': at})}"

    return {
        "page": listing,
        "state": state,
        "states": status.STATE_FILTERS,
        "created_from": created_from,
        "created_to": created_to,
        "live": any(r["state"] in ("queued", "in progress") for r in listing["requests"]),
        "poll_url": url("/console/requests/table", start),
        "prev_url": url("/console/requests", max(0, start - PAGE_SIZE)) if start else None,
        "next_url": url("/console/requests", start + PAGE_SIZE)
        if start + PAGE_SIZE < listing["total"]
        else None,
    }


@router.get("/requests")
def requests_page(
    request: Request, operator: ConsoleOperator, session: SessionDep, query: Filter
) -> HTMLResponse:
    """Newest first with progress and per-channel counts; polls while any is in flight."""
    try:
        context = _requests_context(session, query)
    except PasspostError as exc:
        context = _requests_context(session, RequestsFilter()) | {"error": exc.message}
    return page(request, "requests.html", operator=operator, section="Requests", **context)


@router.get("/requests/table")
def requests_table(
    request: Request, operator: ConsoleOperator, session: SessionDep, query: Filter
) -> HTMLResponse:
    """The table alone: what the Requests page polls."""
    context = _requests_context(session, query)
    return page(request, "_requests_table.html", operator=operator, **context)


def _live_context(session: SessionDep, request_id: int) -> dict[str, Any]:
    progress = status.request_progress(session, request_id)
    return {"progress": progress, "funnel": funnel_svg(progress)}


@router.get("/requests/{request_id}")
def request_page(
    request: Request,
    request_id: str,
    operator: ConsoleOperator,
    session: SessionDep,
    after: Annotated[int, Query(ge=0)] = 0,
    notice: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Progress, the funnel, cancel, and the recipients (keyset pages of 50)."""
    rid = status.parse_id(request_id, "requestId")
    context = _live_context(session, rid)
    recipients = status.request_recipients(session, rid, after=after, limit=RECIPIENTS_PAGE)
    return page(
        request,
        "request.html",
        operator=operator,
        section="Requests",
        title=f"Request {rid}",
        recipients=recipients,
        after=after,
        next_after=recipients[-1]["id"] if len(recipients) == RECIPIENTS_PAGE else None,
        page_size=RECIPIENTS_PAGE,
        notice=notice,
        **context,
    )


@router.get("/requests/{request_id}/live")
def request_live(
    request: Request, request_id: str, operator: ConsoleOperator, session: SessionDep
) -> HTMLResponse:
    """The progress cards and the funnel alone: what the Request page polls."""
    context = _live_context(session, status.parse_id(request_id, "requestId"))
    response = page(request, "_request_live.html", operator=operator, **context)
    if context["progress"]["state"] not in ("queued", "in progress"):
        # Finished while watched: reload once, so the recipients' states and the cancel
        # button follow too (the page polls no more after that).
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/requests/{request_id}/cancel", dependencies=[Csrf])
def cancel(request_id: str, operator: ConsoleOperator, session: SessionDep) -> RedirectResponse:
    """The API's cancel: everything not yet sent becomes ``cancelled``."""
    rid = status.parse_id(request_id, "requestId")
    cancel_request(session, rid)
    notice = urlencode({"notice": "Request cancelled."})
    return RedirectResponse(f"/console/requests/{rid}?{notice}", status_code=303)
