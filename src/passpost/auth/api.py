"""The Volt MX login call (``/authService/accounts/...``): claims and refresh tokens."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from passpost import jsontext
from passpost.auth import service
from passpost.auth.deps import OperatorDep, client_address
from passpost.deps import SessionDep
from passpost.errors import BadRequest, Unauthorized, error_response
from passpost.timestamps import epoch_ms

router = APIRouter(prefix="/authService/accounts", tags=["auth"])

_CREDENTIALS_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["userid", "password"],
                    "properties": {"userid": {"type": "string"}, "password": {"type": "string"}},
                }
            }
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    }
}
_REFRESH_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["refresh_token"],
                    "properties": {"refresh_token": {"type": "string"}},
                }
            }
        },
    }
}


async def _fields(request: Request) -> dict[str, str]:
    """The body's string fields, from JSON or a url-encoded/multipart form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    data = jsontext.loads(await request.body() or b"{}")
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", error_code="INVALID_JSON")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _token_body(issued: service.IssuedTokens) -> dict[str, Any]:
    operator = issued.operator
    return {
        "claims_token": {
            "value": issued.claims_token,
            "exp": epoch_ms(issued.claims_expires_at),
        },
        "refresh_token": issued.refresh_token,
        # The pages' profile keys; operators have a username only, so the e-mail is the
        # username when it is an address, and the names are empty.
        "profile": {
            "email": operator.username if "@" in operator.username else "",
            "userid": operator.username,
            "firstname": "",
            "lastname": "",
            "user_id": str(operator.id),
        },
    }


@router.post("/login", openapi_extra=_CREDENTIALS_SCHEMA)
async def login(request: Request, session: SessionDep) -> dict[str, Any]:
    """Exchange ``userid``/``password`` for a claims token (``X-VoltMX-Authorization``)."""
    fields = await _fields(request)
    userid = fields.get("userid") or fields.get("username")
    password = fields.get("password")
    if not userid or password is None:
        raise BadRequest("Both userid and password are required.", error_code="MISSING_CREDENTIALS")
    # argon2id takes ~150 ms of CPU: it runs in its own small pool, not on the event loop.
    issued = await service.login(
        session, username=userid, password=password, address=client_address(request)
    )
    return _token_body(issued)


@router.post("/refresh", openapi_extra=_REFRESH_SCHEMA, response_model=None)
async def refresh(request: Request, session: SessionDep) -> dict[str, Any] | JSONResponse:
    """Exchange a refresh token for a new claims token and a new refresh token."""
    fields = await _fields(request)
    token = fields.get("refresh_token")
    if not token:
        raise BadRequest("refresh_token is required.", error_code="MISSING_CREDENTIALS")
    try:
        issued = await run_in_threadpool(
            partial(service.refresh, session, refresh_token=token, address=client_address(request))
        )
        return _token_body(issued)
    except Unauthorized as exc:
        # Returned, not raised: a detected token reuse revokes the session, and that
        # revocation must be committed with this (successful) transaction.
        return error_response(exc.status_code, exc.message, exc.error_code)


@router.post("/logout")
def logout(principal: OperatorDep, request: Request, session: SessionDep) -> dict[str, str]:
    """End the login session of the claims token this request carries."""
    token = request.headers.get("x-voltmx-authorization") or ""
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value if scheme.lower() == "bearer" else ""
    token = token.strip().removeprefix("Bearer ").strip()
    if principal.kind != "operator" or not token:
        raise BadRequest(
            "Logout needs a claims token, not a password or API key.",
            error_code="NOT_A_LOGIN_SESSION",
        )
    service.logout(session, token=token)
    return {"id": str(principal.id), "message": "Logged out successfully"}
