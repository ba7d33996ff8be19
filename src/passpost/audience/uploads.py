"""Queued CSV imports of recipients (the original's "Import Users" + ``/api/v1/batchinfo``).

The upload is stored as an ``UploadBatch`` (the file in the row) and answered at once; a
worker imports it in one transaction that also records the outcome, so a batch is either
still queued or done with every row it reports. A worker killed mid-import leaves the
batch queued with an expired lease, and the sweeper queues it again.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from passpost import ids
from passpost.audience import csv_import
from passpost.audience.models import UploadBatch
from passpost.db import utcnow
from passpost.errors import BadRequest

AUDIENCE_MEMBERS = "AUDIENCE_MEMBERS"
QUEUED, DONE, FAILED = "queued", "done", "failed"
MAX_ATTEMPTS = 3


def check_header(data: bytes) -> None:
    """Refuse at upload what can never import: not UTF-8, empty, no contact column."""
    report = csv_import.ImportReport()
    rows = csv_import.iter_contacts(io.BytesIO(data), region="US", report=report)
    # Reads the header (and the first row): later rows are the worker's business.
    next(rows, None)


def create_batch(
    session: Session, *, data: bytes, file_name: str | None, imported_by: str | None
) -> UploadBatch:
    """Store an uploaded file as a queued batch."""
    check_header(data)
    batch = UploadBatch(
        id=ids.new_id(),
        data_type=AUDIENCE_MEMBERS,
        state=QUEUED,
        status_message="File uploaded successfully, import is in progress",
        file_name=(file_name or "")[:255] or None,
        content=data,
        imported_by=imported_by,
        imported_at=utcnow(),
        errors=[],
        ignored_columns=[],
    )
    session.add(batch)
    session.flush()
    return batch


def claim(session: Session, batch_id: int, *, now: datetime, lease: float) -> UploadBatch | None:
    """Lease a queued batch for one import attempt (None: done, gone or leased elsewhere)."""
    batch = session.get(UploadBatch, batch_id)
    if batch is None or batch.state != QUEUED:
        return None
    if batch.lease_until is not None and batch.lease_until > now:
        return None
    batch.lease_until = now + timedelta(seconds=lease)
    batch.attempts += 1
    session.flush()
    return batch


def run(session: Session, batch: UploadBatch, *, region: str) -> None:
    """Import the batch's rows and record the outcome (one transaction: the caller's)."""
    report = csv_import.import_csv(session, data=io.BytesIO(batch.content or b""), region=region)
    batch.total, batch.created, batch.updated = report.total, report.created, report.updated
    batch.failed = report.failed
    batch.errors = [
        {"row": e.row, "errorCode": e.error_code, "message": e.message} for e in report.errors
    ]
    batch.ignored_columns = report.ignored_columns
    imported = report.created + report.updated
    batch.status_message = (
        f"Uploaded file has got errors: {report.failed} of {report.total} rows not imported"
        if report.failed
        else f"Successfully uploaded requests of count :{imported}"
    )
    _finish(batch, DONE)


def fail(session: Session, batch_id: int, message: str, error_code: str) -> None:
    """Record a file that cannot be imported at all (nothing of it was stored)."""
    batch = session.get(UploadBatch, batch_id)
    if batch is None or batch.state != QUEUED:
        return
    batch.status_message = message
    batch.errors = [{"row": 0, "errorCode": error_code, "message": message}]
    _finish(batch, FAILED)
    session.flush()


def _finish(batch: UploadBatch, state: str) -> None:
    batch.state = state
    batch.content = None  # the rows are in the audience now (or never will be)
    batch.lease_until = None
    batch.finished_at = utcnow()


def stale(session: Session, *, now: datetime, older_than: float) -> list[int]:
    """Queued batches nobody holds: their queue task was lost, or its worker died."""
    cutoff = now - timedelta(seconds=older_than)
    rows = session.scalars(
        select(UploadBatch.id).where(
            UploadBatch.state == QUEUED,
            UploadBatch.imported_at < cutoff,
            or_(UploadBatch.lease_until.is_(None), UploadBatch.lease_until < now),
        )
    )
    return list(rows)


def get_batch(session: Session, batch_id: int) -> UploadBatch:
    """One batch, or ``BadRequest`` (the original answers 400 for an unknown id)."""
    batch = session.get(UploadBatch, batch_id)
    if batch is None:
        raise BadRequest(
            f"Invalid request ID. No request found with the provided ID {batch_id}.",
            error_code="UPLOAD_NOT_FOUND",
        )
    return batch


def list_batches(session: Session, *, start: int, page_size: int) -> tuple[int, list[UploadBatch]]:
    """The number of batches and one page of them, newest first."""
    total = session.scalar(select(func.count()).select_from(UploadBatch)) or 0
    page = session.scalars(
        select(UploadBatch).order_by(UploadBatch.id.desc()).offset(start).limit(page_size)
    )
    return total, list(page)


def errors_page(batch: UploadBatch, *, start: int, page_size: int) -> list[dict[str, Any]]:
    """One page of a batch's row errors, numbered as the original does (``id``)."""
    return [
        {"id": start + index + 1, **error}
        for index, error in enumerate(batch.errors[start : start + page_size])
    ]
