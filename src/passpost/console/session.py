"""Console sessions: a login token in an HttpOnly cookie, and the CSRF token of each form.

The cookie carries a claims token from ``auth.service.login`` (the API's own login
sessions: revocable, one hour), and every request is authenticated by the same
``auth.service.authenticate`` as the API's Bearer tokens. A form's CSRF token is an HMAC
of the session cookie, so it needs no storage and cannot be made without the cookie; the
login form, before any session, uses a random double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextlib import suppress
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from passpost.auth import service as auth_service
from passpost.auth.principal import Principal
from passpost.deps import SessionDep
from passpost.errors import PasspostError, Unauthorized

COOKIE = "passpost_console"
LOGIN_CSRF_COOKIE = "passpost_console_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid console session: the operator is sent to the login page."""


class CsrfRefused(Exception):
    """A form came without the right CSRF token."""


def csrf_for(cookie_value: str) -> str:
    """The CSRF token of the session (or login form) this cookie value names."""
    return hmac.new(cookie_value.encode(), b"passpost-console-csrf", hashlib.sha256).hexdigest()


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, Secure when the console is served over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def login_csrf(request: Request) -> tuple[str, str | None]:
    """The login form's CSRF token, and a new cookie value to set when there was none."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    if existing:
        return csrf_for(existing), None
    fresh = secrets.token_urlsafe(24)
    return csrf_for(fresh), fresh


def _operator(request: Request, session: SessionDep) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        principal = auth_service.authenticate(
            session, authorization=f"Bearer {token}", voltmx_authorization=None
        )
    except PasspostError as exc:
        raise LoginRequired() from exc
    if principal.kind != "operator":
        raise LoginRequired()
    request.state.csrf = csrf_for(token)
    return principal


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without the session's CSRF token (form or header)."""
    token = request.cookies.get(COOKIE) or ""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not token or not sent or not hmac.compare_digest(sent, csrf_for(token)):
        raise CsrfRefused()


ConsoleOperator = Annotated[Principal, Depends(_operator)]
Csrf = Depends(check_csrf)


def end_session(session: Session, token: str | None) -> None:
    """Revoke the login session behind the cookie (logout)."""
    if not token:
        return
    # A token already revoked or expired away: the session is over either way.
    with suppress(Unauthorized):
        auth_service.logout(session, token=token)
