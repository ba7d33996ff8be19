"""Passes after they are sent (SPEC §13): list, detail, change, void, expire, per request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from passpost.auth.deps import OperatorDep
from passpost.config import Settings
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution import changes, jobs, status

router = APIRouter(tags=["passes"])
_PASS = "/api/v1/passes/{pass_type_identifier}/{serial_number}"


@router.get("/api/v1/passes")
def list_passes(
    session: SessionDep,
    _: OperatorDep,
    pass_type_identifier: str | None = Query(None, alias="passTypeIdentifier", max_length=255),
    request_id: str | None = Query(None, alias="requestId"),
    start: int = Query(0, ge=0),
    page_size: int = Query(20, ge=1, le=500, alias="pageSize"),
) -> dict[str, Any]:
    """Sent passes: serial, holder, versions, devices, voided, expiry."""
    return changes.list_passes(
        session,
        pass_type_identifier=pass_type_identifier,
        request_id=status.parse_id(request_id, "requestId") if request_id else None,
        start=start,
        page_size=page_size,
    )


@router.get(_PASS + "/detail")
def pass_detail(
    pass_type_identifier: str, serial_number: str, session: SessionDep, _: OperatorDep
) -> dict[str, Any]:
    """Versions, registrations, pushes, install and removal events of one pass."""
    wallet_pass = changes.find_pass(session, pass_type_identifier, serial_number)
    return changes.pass_detail(session, wallet_pass)


def _apply(
    session: Session,
    settings: Settings,
    who: str,
    pass_type_identifier: str,
    serial_number: str,
    **kind: Any,
) -> dict[str, Any]:
    wallet_pass = changes.find_pass(session, pass_type_identifier, serial_number)
    applied = jobs.apply_change(
        session, settings=settings, pass_id=wallet_pass.id, created_by=who, **kind
    )
    return {
        "passTypeIdentifier": pass_type_identifier,
        "serialNumber": serial_number,
        "version": applied.version,
        "requestId": str(applied.request_id) if applied.request_id else None,
    }


@router.patch(_PASS)
async def change_pass(
    pass_type_identifier: str,
    serial_number: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
) -> dict[str, Any]:
    """Set field values by key, re-sign, new version, push; ``notify`` sends update messages."""
    change = changes.parse_change(await request.body())
    return _apply(
        session, settings, principal.name, pass_type_identifier, serial_number, change=change
    )


@router.post(_PASS + "/void")
def void_pass(
    pass_type_identifier: str,
    serial_number: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
) -> dict[str, Any]:
    """Mark the pass ``voided: true``: new version, push."""
    return _apply(session, settings, principal.name, pass_type_identifier, serial_number, void=True)


@router.post(_PASS + "/expire")
def expire_pass(
    pass_type_identifier: str,
    serial_number: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
) -> dict[str, Any]:
    """Set the pass's ``expirationDate`` to now: new version, push."""
    return _apply(
        session, settings, principal.name, pass_type_identifier, serial_number, expire=True
    )


@router.patch("/api/v1/requests/{request_id}/passes", status_code=202)
async def change_request_passes(
    request_id: str, request: Request, session: SessionDep, principal: OperatorDep
) -> dict[str, Any]:
    """The same change for every pass of a request, as queued work with progress."""
    change = changes.parse_change(await request.body())
    job = jobs.create_job(
        session,
        request_id=status.parse_id(request_id, "requestId"),
        change=change,
        created_by=principal.name,
    )
    session.commit()
    jobs.enqueue_job(job.id)
    return jobs.job_view(job)


@router.get("/api/v1/requests/{request_id}/passes/jobs/{job_id}")
def change_job(request_id: str, job_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """Progress of one request-wide change."""
    job = jobs.get_job(
        session,
        request_id=status.parse_id(request_id, "requestId"),
        job_id=status.parse_id(job_id, "jobId"),
    )
    return jobs.job_view(job)
