"""The import call, cancel, and the status endpoints in the original API's shapes (SPEC §1, §5)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost.auth.deps import OperatorDep, OperatorReadDep
from passpost.config import Settings
from passpost.deps import ReadSessionDep, SessionDep, SettingsDep
from passpost.distribution import status
from passpost.distribution.schemas import IMPORT_REQUEST_BODY, parse_pass_content
from passpost.distribution.service import ImportResult, cancel_request
from passpost.distribution.submit import commit_import_async, commit_job, queue_import_soon
from passpost.errors import BadRequest, error_responses
from passpost.uploads import Part, read_multipart

router = APIRouter(tags=["distribution"])

QUEUED = "Request Queued. "  # the original API's text, trailing space included


async def _submit(
    response: Response,
    commit: Callable[[], Awaitable[ImportResult]],
    *,
    priority: bool,
    start_at: datetime | None,
) -> dict[str, str]:
    """The import and generation calls' common end: commit, queue, answer.

    ``commit`` validates and commits the request; the answer waits for the commit (a 200
    is durable), not for the queue.
    """
    result = await commit()
    queue_import_soon(result, priority=priority, start_at=start_at)
    # The body stays exactly the original API's; whether passpost can keep this pass
    # current on phones (it holds the signing certificate, or the pass already points
    # here) is said in a header, and in GET /api/v1/requests/{id}.
    response.headers["X-Passpost-Pass-Updatable"] = "true" if result.updatable else "false"
    if result.warnings:
        # Codes only (ASCII, one line); the sentences are in GET /api/v1/requests/{id}.
        response.headers["X-Passpost-Warnings"] = ", ".join(result.warnings)
    return {"requestId": str(result.request_id), "description": QUEUED}


async def _read_parts(request: Request, session: Session, settings: Settings) -> dict[str, Part]:
    # End the authentication's transaction before reading a possibly slow upload (a reading
    # one, as these routes take, has ended with the credentials' check already).
    if session.in_transaction():
        await run_in_threadpool(session.commit)
    return await read_multipart(request, limit=settings.max_upload_bytes)


def _content_part(parts: dict[str, Part]) -> bytes:
    content_part = parts.get("passContent")
    if content_part is None:
        raise BadRequest(
            "The multipart part 'passContent' (JSON) is missing.", error_code="MISSING_PASS_CONTENT"
        )
    return content_part.data


async def _import(
    request: Request,
    response: Response,
    session: Session,
    settings: Settings,
    who: str,
    *,
    must_exist: bool,
) -> dict[str, str]:
    parts = await _read_parts(request, session, settings)
    pkpass_part = parts.get("pkPass")
    if pkpass_part is None or not pkpass_part.data:
        raise BadRequest(
            "The multipart part 'pkPass' (the .pkpass file) is missing.",
            error_code="MISSING_PKPASS",
        )
    content = parse_pass_content(_content_part(parts))
    commit = partial(
        commit_import_async,
        session,
        settings=settings,
        upload=pkpass_part.data,
        content=content,
        created_by=who,
        must_exist=must_exist,
    )
    return await _submit(response, commit, priority=content.priority, start_at=content.start_at)


IMPORT_ERRORS = error_responses(
    e400=[
        (
            "Invalid pass: manifest.json lists a digest that does not match pass.json.",
            "MANIFEST_DIGEST_MISMATCH",
        ),
        ("The multipart part 'pkPass' (the .pkpass file) is missing.", "MISSING_PKPASS"),
        ("passContent has no recipients.", "NO_RECIPIENTS"),
    ],
    e401=[("Credentials are required (HTTP Basic, a login token or an API key).", "AUTH_REQUIRED")],
    e413=[("The request body is larger than 10485760 bytes.", "PAYLOAD_TOO_LARGE")],
)
IMPORT_DOCS: dict[str, Any] = {
    "openapi_extra": {"requestBody": IMPORT_REQUEST_BODY},
    "responses": IMPORT_ERRORS,
}


@router.post("/api/v1/message/pass/import", **IMPORT_DOCS)
async def import_pkpass(
    request: Request,
    response: Response,
    principal: OperatorReadDep,
    session: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Import a signed .pkpass and distribute it to the recipients in ``passContent``."""
    return await _import(request, response, session, settings, principal.name, must_exist=False)


@router.post("/api/v1/message/pass/import/update", **IMPORT_DOCS)
async def import_pkpass_update(
    request: Request,
    response: Response,
    principal: OperatorReadDep,
    session: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Import a new version of an existing pass: holders are notified, Wallets are pushed."""
    return await _import(request, response, session, settings, principal.name, must_exist=True)


@router.post("/api/v1/pass/cancel/{request_id}")
def cancel(request_id: str, session: SessionDep, _: OperatorDep) -> dict[str, str]:
    """Cancel a request: everything not yet submitted becomes ``cancelled``."""
    cancel_request(session, status.parse_id(request_id, "requestId"))
    return {"id": request_id, "message": "Request cancelled Successfully"}


@router.get("/api/v1/pass/meta/{request_id}")
def request_meta(
    request_id: str,
    session: SessionDep,
    _: OperatorDep,
    start: int = Query(0, ge=0),
    page_size: int = Query(10, ge=1, le=1000, alias="pageSize"),
) -> dict[str, Any]:
    """One ``passRequests`` entry per recipient of a request."""
    return status.request_meta(
        session, status.parse_id(request_id, "requestId"), start=start, page_size=page_size
    )


@router.get("/api/v1/pass/meta/{request_id}/{audience_id}")
def request_meta_one(
    request_id: str, audience_id: str, session: SessionDep, _: OperatorDep
) -> dict[str, Any]:
    """The ``passRequests`` entry of one recipient of a request."""
    return status.request_meta_one(session, status.parse_id(request_id, "requestId"), audience_id)


@router.get("/api/v1/pass/{pass_id}/status")
def pass_status(pass_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """The channel states of one recipient's pass in one request."""
    return status.pass_status(session, status.parse_id(pass_id, "passId"))


@router.get("/api/v1/pass/{pass_id}/content")
def pass_content(
    pass_id: str, session: SessionDep, settings: SettingsDep, _: OperatorDep
) -> dict[str, Any]:
    """The pass.json of one recipient's pass (its latest version)."""
    return status.pass_content(session, status.parse_id(pass_id, "passId"), settings=settings)


@router.get(
    "/api/v1/requests",
    responses=error_responses(
        e400=[
            ("state must be one of: queued, in progress, done, cancelled, active.", "INVALID_STATE")
        ]
    ),
)
def list_requests(
    session: SessionDep,
    _: OperatorDep,
    start: int = Query(0, ge=0),
    page_size: int = Query(20, ge=1, le=500, alias="pageSize"),
    state: str | None = Query(
        None, description="queued, in progress, done, cancelled, or active (queued or in progress)"
    ),
    created_from: datetime | None = Query(None, alias="createdFrom"),
    created_to: datetime | None = Query(None, alias="createdTo"),
) -> dict[str, Any]:
    """Requests, newest first: ``{"total", "requests": [...]}``, each as in ``/requests/{id}``
    without the timings."""
    return status.list_requests(
        session,
        start=start,
        page_size=page_size,
        state=state,
        created_from=_aware(created_from),
        created_to=_aware(created_to),
    )


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


@router.get("/api/v1/requests/{request_id}")
def request_progress(request_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """Totals per channel and state, progress and timings of a request."""
    return status.request_progress(session, status.parse_id(request_id, "requestId"))


@router.post("/api/v1/message/pass")
async def generate_pass(
    request: Request,
    response: Response,
    principal: OperatorReadDep,
    session: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Distribute a pass generated from JSON (``passServiceRequest``), SPEC §12.

    JSON, or multipart with the JSON in ``passContent`` and the images as parts named by
    their ``imageFieldName``. One personal pass per recipient, signed with the stored
    certificate.
    """
    return await _generation(request, response, principal.name, session, settings, False)


@router.post("/api/v1/message/pass/update")
async def update_generated_pass(
    request: Request,
    response: Response,
    principal: OperatorReadDep,
    session: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """The Update Pass API: replace a scheduled (not yet sending) generated pass request.

    Same body as the generation call (its ``pass`` object, wrapped or not); the pass is the
    one with ``passTypeIdentifier`` + ``passSerialNumber``.
    """
    return await _generation(request, response, principal.name, session, settings, True)


async def _generation(
    request: Request,
    response: Response,
    who: str,
    session: Session,
    settings: Settings,
    update: bool,
) -> dict[str, str]:
    from passpost.distribution.generate import (
        generate_and_import,
        parse_service_request,
        update_scheduled,
    )

    images: dict[str, bytes] = {}
    if request.headers.get("content-type", "").startswith("multipart/"):
        parts = await _read_parts(request, session, settings)
        raw = _content_part(parts)
        images = {name: part.data for name, part in parts.items() if name != "passContent"}
    else:
        await run_in_threadpool(session.commit)
        raw = await request.body()
    body = parse_service_request(raw, wrapped=not update)
    content = parse_pass_content(
        json.dumps({**_timing(body), "recipients": body.get("recipients")})
    )
    action = update_scheduled if update else generate_and_import

    def job(writer: Session) -> ImportResult:
        return action(writer, settings=settings, request=body, parts=images, created_by=who)

    return await _submit(
        response,
        partial(run_in_threadpool, commit_job, session, job),
        priority=content.priority,
        start_at=content.start_at,
    )


def _timing(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("priority", "startTimeStamp", "endTimeStamp") if k in body}
