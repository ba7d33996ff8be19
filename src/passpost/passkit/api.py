"""The PassKit Web Service (SPEC §8) under ``/api/v1``, and the operators' view of device logs.

Thin: parse, call ``passpost.passkit.service``, shape the answer. Bodies are read raw so
that bad JSON is a 400 from us, never a framework 422 or a 500.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost.auth.deps import OperatorDep
from passpost.errors import PayloadTooLarge
from passpost.passkit import service
from passpost.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["passkit"])

PKPASS_MEDIA_TYPE = "application/vnd.apple.pkpass"
MAX_BODY_BYTES = 256 * 1024

AuthorizationHeader = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("The body is too large.", error_code="BODY_TOO_LARGE")
    return body


def http_date(moment: datetime) -> str:
    """An RFC 9110 HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An ``If-Modified-Since`` value as aware UTC; None when absent or unparseable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- registrations -----------------------------------------------------------------------


def _register(
    session: Session,
    device: str,
    pass_type: str,
    serial: str,
    authorization: str | None,
    body: bytes,
) -> bool:
    pass_id = service.authenticate_pass(
        session,
        pass_type_identifier=pass_type,
        serial_number=serial,
        authorization=authorization,
    )
    push_token = service.parse_push_token(body)
    return service.register_device(
        session, pass_id=pass_id, device_library_identifier=device, push_token=push_token
    )


@router.post(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}/{serial_number}",
    responses={201: {"description": "Registered"}, 200: {"description": "Already registered"}},
)
async def register_device(
    request: Request,
    session: SessionDep,
    device_library_identifier: str,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
) -> Response:
    """Register a device to receive push notifications for a pass."""
    body = await _body(request)
    created = await run_in_threadpool(
        _register,
        session,
        device_library_identifier,
        pass_type_identifier,
        serial_number,
        authorization,
        body,
    )
    return Response(status_code=201 if created else 200)


@router.delete(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}/{serial_number}"
)
def unregister_device(
    session: SessionDep,
    device_library_identifier: str,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
) -> Response:
    """Unregister a device from a pass's push notifications."""
    pass_id = service.authenticate_pass(
        session,
        pass_type_identifier=pass_type_identifier,
        serial_number=serial_number,
        authorization=authorization,
    )
    service.unregister_device(
        session, pass_id=pass_id, device_library_identifier=device_library_identifier
    )
    return Response(status_code=200)


@router.get(
    "/devices/{device_library_identifier}/registrations/{pass_type_identifier}",
    responses={204: {"description": "No matching passes"}},
)
def serials_since(
    session: SessionDep,
    device_library_identifier: str,
    pass_type_identifier: str,
    passes_updated_since: Annotated[str | None, Query(alias="passesUpdatedSince")] = None,
) -> Any:
    """Serial numbers of the device's passes updated since the tag (204 when none)."""
    since = service.parse_tag(passes_updated_since)
    answer = service.serials_since(
        session,
        device_library_identifier=device_library_identifier,
        pass_type_identifier=pass_type_identifier,
        since=since,
    )
    if answer is None:
        return Response(status_code=204)
    return {"serialNumbers": answer.serial_numbers, "lastUpdated": answer.last_updated}


# -- the latest pass ---------------------------------------------------------------------


@router.get(
    "/passes/{pass_type_identifier}/{serial_number}",
    response_class=Response,
    responses={
        200: {"content": {PKPASS_MEDIA_TYPE: {}}, "description": "The latest pass"},
        304: {"description": "Not modified since If-Modified-Since"},
    },
)
def latest_pass(
    session: SessionDep,
    pass_type_identifier: str,
    serial_number: str,
    authorization: AuthorizationHeader = None,
    if_modified_since: Annotated[
        str | None, Header(alias="If-Modified-Since", include_in_schema=False)
    ] = None,
) -> Response:
    """The latest version of a pass; 304 without reading the pass when nothing changed."""
    pass_id = service.authenticate_pass(
        session,
        pass_type_identifier=pass_type_identifier,
        serial_number=serial_number,
        authorization=authorization,
    )
    latest = service.latest_pass(session, pass_id=pass_id)
    headers = {"Last-Modified": http_date(latest.last_modified), "Cache-Control": "no-cache"}
    since = parse_http_date(if_modified_since)
    if since is not None and latest.last_modified <= since:
        return Response(status_code=304, headers=headers)
    content = service.pass_content(session, version_id=latest.version_id)
    return Response(content=content, media_type=PKPASS_MEDIA_TYPE, headers=headers)


# -- device logs -------------------------------------------------------------------------


def _store_logs(session: Session, body: bytes, remote: str | None, agent: str | None) -> int:
    messages = service.parse_logs(body)
    return service.store_logs(session, messages=messages, remote_addr=remote, user_agent=agent)


@router.post("/log")
async def device_log(request: Request, session: SessionDep) -> Response:
    """Store the messages a device reports (visible to operators)."""
    body = await _body(request)
    remote = request.client.host if request.client else None
    await run_in_threadpool(_store_logs, session, body, remote, request.headers.get("User-Agent"))
    return Response(status_code=200)


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
                "receivedAt": row.received_at.isoformat(),
            }
            for row in rows
        ],
    }
