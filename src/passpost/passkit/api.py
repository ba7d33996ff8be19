"""The PassKit Web Service (SPEC §8) under ``/api/v1``, and the operators' view of device logs.

Thin: parse, call ``passpost.passkit.service``, shape the answer. Bodies are read raw so
that bad JSON is a 400 from us, never a framework 422 or a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost.auth.deps import OperatorDep
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.deps import SessionDep
from passpost.metrics import DEVICE_REGISTRATIONS
from passpost.passkit import polls, service
from passpost.passkit.polls import PKPASS_MEDIA_TYPE, PollState
from passpost.timestamps import iso

router = APIRouter(prefix="/api/v1", tags=["passkit"])

AuthorizationHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]


T = TypeVar("T")


async def _in_transaction(fn: Callable[..., T], *args: Any, write: bool = False) -> T:
    """Run ``fn(session, *args)`` in one transaction, in one worker-thread hop.

    Devices poll these endpoints; one hop instead of SessionDep's three (open, call,
    commit) is most of the per-request cost.
    """

    def run() -> T:
        with session_scope(get_settings().resolved_database_url, write=write) as session:
            return fn(session, *args)

    return await run_in_threadpool(run)


async def _body(request: Request) -> bytes:
    # The size is capped while reading, before this (passpost.web.body_limit).
    return await request.body()


# -- registrations -----------------------------------------------------------------------


def _register(
    session: Session,
    device: str,
    pass_type: str,
    serial: str,
    authorization: str | None,
    body: bytes,
    remote: str | None,
) -> tuple[bool, int]:
    pass_id = service.authenticate_pass(
        session,
        pass_type_identifier=pass_type,
        serial_number=serial,
        authorization=authorization,
    )
    push_token = service.parse_push_token(body)
    settings = get_settings()
    created = service.register_device(
        session,
        pass_id=pass_id,
        device_library_identifier=device,
        push_token=push_token,
        remote_addr=remote,
        limits=service.RegistrationLimits(
            per_pass=settings.devices_per_pass,
            per_recipient=settings.devices_per_recipient,
            per_address_hour=settings.registrations_per_address,
        ),
    )
    return created, pass_id


def _ack(message: str, ident: object, status_code: int = 200) -> Response:
    # The original answers these calls with its {"message", "id"} JSON; Wallet ignores it.
    body = json.dumps({"message": message, "id": str(ident)})
    return Response(body, status_code=status_code, media_type="application/json")


@router.post(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}/{serial_number}",
    responses={201: {"description": "Registered"}, 200: {"description": "Already registered"}},
)
async def register_device(
    request: Request,
    device_library_identifier: str,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
) -> Response:
    """Register a device to receive push notifications for a pass."""
    body = await _body(request)
    created, pass_id = await _in_transaction(
        _register,
        device_library_identifier,
        pass_type_identifier,
        serial_number,
        authorization,
        body,
        request.client.host if request.client else None,
        write=True,
    )
    DEVICE_REGISTRATIONS.labels("registered" if created else "already_registered").inc()
    # 201 for a new registration is Apple's protocol; the pages document 200 and this body.
    return _ack("Details added successfully", pass_id, 201 if created else 200)


def _unregister(
    session: Session, device: str, pass_type: str, serial: str, auth: str | None
) -> int:
    pass_id = service.authenticate_pass(
        session, pass_type_identifier=pass_type, serial_number=serial, authorization=auth
    )
    service.unregister_device(session, pass_id=pass_id, device_library_identifier=device)
    return pass_id


@router.delete(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}/{serial_number}"
)
async def unregister_device(
    device_library_identifier: str,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
) -> Response:
    """Unregister a device from a pass's push notifications."""
    pass_id = await _in_transaction(
        _unregister,
        device_library_identifier,
        pass_type_identifier,
        serial_number,
        authorization,
        write=True,
    )
    DEVICE_REGISTRATIONS.labels("unregistered").inc()
    return _ack("Unregistered succesfully.", pass_id)  # the original's spelling


# The two polled GETs are answered by ``web.polled`` before the middleware stack; these routes
# document them and answer through the same functions when called through FastAPI.


def _polls(request: Request) -> PollState:
    state: PollState = request.app.state.passkit_polls
    return state


def _response(answer: polls.Answer) -> Response:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers}
    return Response(answer.body, status_code=answer.status, headers=headers)


@router.get(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}",
    responses={204: {"description": "No matching passes"}},
)
async def serials_since(
    request: Request,
    device_library_identifier: str,
    pass_type_identifier: str,
    passes_updated_since: Annotated[str | None, Query(alias="passesUpdatedSince")] = None,
) -> Response:
    """Serial numbers of the device's passes updated since the tag (204 when none)."""
    state = _polls(request)
    answer = await polls.serials_since(
        state.reads,
        url=state.database_url(),
        device_library_identifier=device_library_identifier,
        pass_type_identifier=pass_type_identifier,
        passes_updated_since=passes_updated_since,
    )
    return _response(answer)


@router.get(
    "/passes/{pass_type_identifier}/{serial_number}",
    response_class=Response,
    responses={
        200: {"content": {PKPASS_MEDIA_TYPE: {}}, "description": "The latest pass"},
        304: {"description": "Not modified since If-Modified-Since"},
    },
)
async def latest_pass(
    request: Request,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
    if_modified_since: Annotated[
        str | None, Header(alias="If-Modified-Since", include_in_schema=False)
    ] = None,
) -> Response:
    """The latest version of a pass; 304 without reading the pass when nothing changed."""
    state = _polls(request)
    answer = await polls.latest_pass(
        state.reads,
        state.cache,
        url=state.database_url(),
        pass_type_identifier=pass_type_identifier,
        serial_number=serial_number,
        authorization=authorization,
        if_modified_since=if_modified_since,
    )
    return _response(answer)


# -- device logs -------------------------------------------------------------------------


def _store_logs(session: Session, body: bytes, remote: str | None, agent: str | None) -> int:
    messages = service.parse_logs(body)
    return service.store_logs(
        session,
        messages=messages,
        remote_addr=remote,
        user_agent=agent,
        max_rows=get_settings().device_log_max_rows,
    )


@router.post("/log")
async def device_log(request: Request) -> Response:
    """Store the messages a device reports (visible to operators)."""
    body = await _body(request)
    remote = request.client.host if request.client else None
    await _in_transaction(_store_logs, body, remote, request.headers.get("User-Agent"), write=True)
    return _ack("Successfully updated the logs.", "")


@router.get("/passkit/logs", tags=["passkit", "operators"])
def list_device_logs(
    session: SessionDep,
    _: OperatorDep,
    start: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Device log messages, newest first."""
    total, rows = service.list_logs(session, start=start, page_size=page_size)
    return {
        "total": total,
        "logs": [
            {
                "id": str(row.id),
                "message": row.message,
                "remoteAddr": row.remote_addr,
                "userAgent": row.user_agent,
                "receivedAt": iso(row.received_at),
            }
            for row in rows
        ],
    }
