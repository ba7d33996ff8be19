"""The import call, cancel, and the status endpoints in the original API's shapes (SPEC §1, §5)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost.auth.deps import OperatorDep
from passpost.config import Settings
from passpost.db import begin_write, utcnow
from passpost.distribution import status
from passpost.distribution.schemas import parse_pass_content
from passpost.distribution.service import ImportResult, cancel_request, import_pass
from passpost.errors import BadRequest
from passpost.web.deps import SessionDep, SettingsDep
from passpost.web.multipart import read_multipart

log = logging.getLogger(__name__)
router = APIRouter(tags=["distribution"])

QUEUED = "Request Queued. "  # the original API's text, trailing space included


async def _import(
    request: Request,
    response: Response,
    session: Session,
    settings: Settings,
    who: str,
    *,
    must_exist: bool,
) -> dict[str, str]:
    # End the authentication's transaction before reading a possibly slow upload: on
    # SQLite every transaction holds the write lock.
    await run_in_threadpool(session.commit)
    parts = await read_multipart(request, limit=settings.max_upload_bytes)
    pkpass_part = parts.get("pkPass")
    if pkpass_part is None or not pkpass_part.data:
        raise BadRequest(
            "The multipart part 'pkPass' (the .pkpass file) is missing.",
            error_code="MISSING_PKPASS",
        )
    content_part = parts.get("passContent")
    if content_part is None:
        raise BadRequest(
            "The multipart part 'passContent' (JSON) is missing.", error_code="MISSING_PASS_CONTENT"
        )
    content = parse_pass_content(content_part.data)
    result = await run_in_threadpool(
        _store, session, settings, pkpass_part.data, content, who, must_exist
    )
    _queue_work(result, content.priority, content.start_at)
    # The body stays exactly the original API's; whether passpost can keep this pass
    # current on phones (it holds the signing certificate, or the pass already points
    # here) is said in a header, and in GET /api/v1/requests/{id}.
    response.headers["X-Passpost-Pass-Updatable"] = "true" if result.updatable else "false"
    return {"requestId": str(result.request_id), "description": QUEUED}


def _store(
    session: Session, settings: Settings, data: bytes, content: Any, who: str, must_exist: bool
) -> ImportResult:
    # One transaction: pass version, request and ledger are committed before the 200.
    try:
        begin_write(session)
        result = import_pass(
            session,
            settings=settings,
            upload=data,
            content=content,
            created_by=who,
            must_exist=must_exist,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def _queue_work(result: ImportResult, priority: bool, start_at: Any) -> None:
    from passpost.distribution.tasks import dispatch_request
    from passpost.passkit.tasks import push_pass_update
    from passpost.queue import PRIORITY_HIGH, PRIORITY_NORMAL, enqueue

    # After the commit. If the queue is unreachable the sweeper finds the work in the ledger.
    try:
        eta = start_at if start_at is not None and start_at > utcnow() else None
        enqueue(
            dispatch_request,
            result.request_id,
            priority=PRIORITY_HIGH if priority else PRIORITY_NORMAL,
            eta=eta,
        )
        if result.version > 1:
            enqueue(push_pass_update, result.pass_id, priority=PRIORITY_HIGH)
    except Exception:
        log.exception("could not queue request %s; the sweeper will pick it up", result.request_id)


@router.post("/api/v1/message/pass/import")
async def import_pkpass(
    request: Request,
    response: Response,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Import a signed .pkpass and distribute it to the recipients in ``passContent``."""
    return await _import(request, response, session, settings, principal.name, must_exist=False)


@router.post("/api/v1/message/pass/import/update")
async def import_pkpass_update(
    request: Request,
    response: Response,
    principal: OperatorDep,
    session: SessionDep,
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
def pass_content(pass_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """The pass.json of one recipient's pass (its latest version)."""
    return status.pass_content(session, status.parse_id(pass_id, "passId"))


@router.get("/api/v1/requests/{request_id}")
def request_progress(request_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """Totals per channel and state, progress and timings of a request."""
    return status.request_progress(session, status.parse_id(request_id, "requestId"))
