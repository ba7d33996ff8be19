"""Request-wide pass changes as queued work (SPEC §13), and update messages for a change.

A job changes every pass of a request in chunks, one transaction per chunk; its ``cursor``
(the last holder done) and counters are committed with the chunk, so a task that dies
loses at most its chunk's uncommitted work, and the sweeper re-queues a job that stopped
moving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost import ids, secrets
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.changes import PassChange, change_pass
from passpost.distribution.models import (
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassChangeJob,
    PassHolder,
)
from passpost.distribution.personal import build_personal_pass
from passpost.distribution.schemas import IntegrationConfig
from passpost.errors import BadRequest, NotFound, PasspostError
from passpost.passes.models import PassKind, WalletPass

log = logging.getLogger(__name__)
CHUNK = 20


class JobState:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _request(session: Session, request_id: int) -> DistributionRequest:
    request = session.get(DistributionRequest, request_id)
    if request is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    return request


def _is_personal(session: Session, request: DistributionRequest) -> bool:
    return session.scalar(select(WalletPass.kind).where(WalletPass.id == request.pass_id)) == (
        PassKind.TEMPLATE
    )


def create_job(
    session: Session, *, request_id: int, change: PassChange, created_by: str
) -> PassChangeJob:
    """A queued change of every pass of a request (the caller enqueues it after commit)."""
    request = _request(session, request_id)
    if _is_personal(session, request):
        total = session.scalar(
            select(func.count())
            .select_from(PassHolder)
            .where(PassHolder.request_id == request_id, PassHolder.serial_number.is_not(None))
        )
    else:
        total = 1
    now = utcnow()
    job = PassChangeJob(
        id=ids.new_id(),
        request_id=request_id,
        changes=change.model_dump_json(by_alias=True),
        state=JobState.QUEUED,
        total=int(total or 0),
        done=0,
        failed=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, request_id: int, job_id: int) -> PassChangeJob:
    """One job of a request, or 404."""
    job = session.get(PassChangeJob, job_id)
    if job is None or job.request_id != request_id:
        raise NotFound(f"No pass change {job_id} for this request.", error_code="JOB_NOT_FOUND")
    return job


def job_view(job: PassChangeJob) -> dict[str, Any]:
    """What an operator sees of a job: state and progress."""
    return {
        "jobId": str(job.id),
        "requestId": str(job.request_id),
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "progress": round(job.done / job.total, 4) if job.total else 1.0,
        "lastError": job.last_error,
    }


def request_jobs(session: Session, request_id: int) -> list[dict[str, Any]]:
    """Every pass change of a request, newest first."""
    rows = session.scalars(
        select(PassChangeJob)
        .where(PassChangeJob.request_id == request_id)
        .order_by(PassChangeJob.id.desc())
    )
    return [job_view(j) for j in rows]


@dataclass
class ChunkResult:
    """What one chunk did: passes to push, update requests to dispatch, and whether done."""

    finished: bool
    pass_ids: list[int] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)


def run_chunk(session: Session, *, settings: Settings, job_id: int) -> ChunkResult:
    """Change the next chunk of a job's passes (call in a writer transaction)."""
    job = session.get(PassChangeJob, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.state in (JobState.DONE, JobState.FAILED):
        return ChunkResult(finished=True)
    change = PassChange.model_validate_json(job.changes)
    request = _request(session, job.request_id)
    job.state, job.updated_at = JobState.RUNNING, utcnow()
    result = ChunkResult(finished=False)
    if _is_personal(session, request):
        holders = list(
            session.scalars(
                select(PassHolder)
                .where(
                    PassHolder.request_id == job.request_id,
                    PassHolder.serial_number.is_not(None),
                    PassHolder.id > (job.cursor or 0),
                )
                .order_by(PassHolder.id)
                .limit(CHUNK)
            )
        )
        for holder in holders:
            _change_one(session, settings, job, change, holder, result)
            job.cursor = holder.id
        result.finished = len(holders) < CHUNK
    else:
        _change_shared(session, settings, job, change, request, result)
        result.finished = True
    if result.finished:
        job.state = JobState.DONE if job.done or not job.total else JobState.FAILED
        job.finished_at = utcnow()
        if change.notify and job.done:
            notified = notify_request(session, request_id=job.request_id, created_by=job.created_by)
            result.notified += [notified] if notified else []
    return result


def _change_one(
    session: Session,
    settings: Settings,
    job: PassChangeJob,
    change: PassChange,
    holder: PassHolder,
    result: ChunkResult,
) -> None:
    savepoint = session.begin_nested()
    try:
        pass_id = holder.personal_pass_id or build_personal_pass(
            session, settings=settings, holder_id=holder.id
        )
        change_pass(session, settings=settings, pass_id=pass_id, change=change)
    except PasspostError as exc:
        savepoint.rollback()
        job.failed += 1
        job.last_error = f"{holder.serial_number}: {exc.message}"
        return
    savepoint.commit()
    job.done += 1
    result.pass_ids.append(pass_id)


def _change_shared(
    session: Session,
    settings: Settings,
    job: PassChangeJob,
    change: PassChange,
    request: DistributionRequest,
    result: ChunkResult,
) -> None:
    try:
        changed = change_pass(session, settings=settings, pass_id=request.pass_id, change=change)
    except PasspostError as exc:
        job.failed, job.last_error = 1, exc.message
        return
    job.done = 1
    result.pass_ids.append(changed.pass_id)


def stalled_jobs(session: Session, *, settings: Settings) -> list[int]:
    """Jobs not finished and not moving for a lease: their task died; queue them again."""
    cutoff = utcnow() - timedelta(seconds=settings.lease_seconds)
    return [
        int(j)
        for j in session.scalars(
            select(PassChangeJob.id).where(
                PassChangeJob.state.in_((JobState.QUEUED, JobState.RUNNING)),
                PassChangeJob.updated_at < cutoff,
            )
        )
    ]


def enqueue_job(job_id: int) -> None:
    """Queue a job's task (after the commit); the sweeper re-queues it if this fails."""
    from passpost.distribution.tasks import apply_pass_changes
    from passpost.queue import enqueue

    try:
        enqueue(apply_pass_changes, job_id)
    except Exception:
        log.exception("could not queue pass change %s; the sweeper will", job_id)


def dispatch(request_id: int) -> None:
    """Queue the sending of an update request (after the commit)."""
    from passpost.distribution.tasks import dispatch_request
    from passpost.queue import enqueue

    try:
        enqueue(dispatch_request, request_id)
    except Exception:
        log.exception("could not queue request %s; the sweeper will pick it up", request_id)


def queue_push(pass_id: int) -> None:
    """Queue the APNs push of a pass's new version (after the commit); the sweeper finds
    pending pushes if the queue is unreachable."""
    from passpost.passkit.tasks import push_pass_update
    from passpost.queue import PRIORITY_HIGH, enqueue

    try:
        enqueue(push_pass_update, pass_id, priority=PRIORITY_HIGH)
    except Exception:
        log.exception("could not queue the push of pass %s; the sweeper will", pass_id)


@dataclass
class Applied:
    """One pass changed: its new version, and the update messages' request if notified."""

    pass_id: int
    version: int
    request_id: int | None


def apply_change(
    session: Session,
    *,
    settings: Settings,
    pass_id: int,
    created_by: str | None,
    change: PassChange | None = None,
    void: bool = False,
    expire: bool = False,
) -> Applied:
    """One pass's change (SPEC §13) as the API and the console apply it.

    The new version and, with ``change.notify``, the holders' update request are committed
    together; then the push is queued and the update messages dispatched.
    """
    changed = change_pass(
        session, settings=settings, pass_id=pass_id, change=change, void=void, expire=expire
    )
    request_id = None
    if change is not None and change.notify:
        request_id = notify_holders(session, pass_id=changed.pass_id, created_by=created_by)
    session.commit()
    queue_push(changed.pass_id)
    if request_id is not None:
        dispatch(request_id)
    return Applied(pass_id=changed.pass_id, version=changed.version, request_id=request_id)


# -- update messages for a changed pass ---------------------------------------------------


def notify_holders(session: Session, *, pass_id: int, created_by: str | None) -> int | None:
    """An update request to the holders of one pass (``notify: true``); its id, if any."""
    wallet_pass = session.get(WalletPass, pass_id)
    if wallet_pass is None:
        return None
    column = (
        PassHolder.personal_pass_id if wallet_pass.kind == PassKind.PERSONAL else PassHolder.pass_id
    )
    holders = list(session.scalars(select(PassHolder).where(column == pass_id)))
    return _update_request(session, holders, created_by)


def notify_request(session: Session, *, request_id: int, created_by: str | None) -> int | None:
    """An update request to every holder of a request that has a pass."""
    query = select(PassHolder).where(PassHolder.request_id == request_id)
    if _is_personal(session, _request(session, request_id)):
        query = query.where(PassHolder.serial_number.is_not(None))  # refused holders have none
    return _update_request(session, list(session.scalars(query)), created_by)


def _update_request(
    session: Session, holders: list[PassHolder], created_by: str | None
) -> int | None:
    from passpost.distribution.service import contacts, initial_state

    latest: dict[str, PassHolder] = {}
    for holder in sorted(holders, key=lambda h: h.id):
        if holder.recipient_id is not None:
            latest[holder.audience_id] = holder
    if not latest:
        return None
    newest = max(latest.values(), key=lambda h: h.id)
    source = _request(session, newest.request_id)
    templates = IntegrationConfig.model_validate_json(source.integration_config).update
    config = IntegrationConfig.model_validate({"passUpdateNotificationDetails": []})
    config.update = templates
    channels = config.enabled("update")
    if not channels:
        return None
    pass_row = session.get(WalletPass, newest.pass_id)
    if pass_row is None or pass_row.latest_version_id is None:
        raise BadRequest("The pass has no version to announce.", error_code="PASS_NOT_FOUND")
    now = utcnow()
    request = DistributionRequest(
        id=ids.new_id(),
        pass_id=newest.pass_id,
        pass_version_id=pass_row.latest_version_id,
        kind="update",
        priority=False,
        integration_config=config.model_dump_json(by_alias=True),
        created_by=created_by,
        created_at=now,
    )
    session.add(request)
    session.flush()
    found = contacts(session, {h.recipient_id for h in latest.values() if h.recipient_id})
    for old in latest.values():
        token = secrets.new_token()
        holder = PassHolder(
            id=ids.new_id(),
            request_id=request.id,
            pass_id=old.pass_id,
            recipient_id=old.recipient_id,
            audience_id=old.audience_id,
            notification="update",
            link_hash=secrets.token_hash(token),
            link_token_enc=secrets.seal_link_token(token),
            opened_count=0,
            serial_number=old.serial_number,
            personal_values=old.personal_values,
            personal_pass_id=old.personal_pass_id,
            created_at=now,
        )
        session.add(holder)
        session.flush()
        for channel in channels:
            state, reason = initial_state(found.get(old.recipient_id or 0), channel)
            session.add(
                Delivery(
                    id=ids.new_id(),
                    request_id=request.id,
                    holder_id=holder.id,
                    channel=channel,
                    state=state,
                    priority=False,
                    attempts=0,
                    last_error=reason,
                    finished_at=None if state == DeliveryState.QUEUED else now,
                    created_at=now,
                    updated_at=now,
                )
            )
    return request.id
