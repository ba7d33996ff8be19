"""Queue tasks of the audience domain: import an uploaded CSV, re-queue lost uploads."""

from __future__ import annotations

import logging

from passpost.audience import uploads
from passpost.audience.models import UploadBatch
from passpost.config import Settings, get_settings
from passpost.db import session_scope, utcnow
from passpost.errors import PasspostError
from passpost.queue import PRIORITY_NORMAL, enqueue, task

log = logging.getLogger(__name__)


@task
def import_upload(batch_id: int) -> None:
    """Import one uploaded CSV: lease the batch, then rows and outcome in one transaction."""
    settings = get_settings()
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        batch = uploads.claim(session, batch_id, now=utcnow(), lease=settings.lease_seconds)
        if batch is None:
            return
        attempts = batch.attempts
    try:
        with session_scope(url, write=True) as session:
            # Leased to this worker above; still queued unless another attempt finished it.
            batch = session.get(UploadBatch, batch_id)
            if batch is None or batch.state != uploads.QUEUED:
                return
            uploads.run(session, batch, region=settings.sms_default_region)
    except PasspostError as exc:  # a file that is not CSV past its header: nothing stored
        with session_scope(url, write=True) as session:
            uploads.fail(session, batch_id, exc.message, exc.error_code)
    except Exception:
        if attempts >= uploads.MAX_ATTEMPTS:
            with session_scope(url, write=True) as session:
                uploads.fail(session, batch_id, "Failed to process the request", "IMPORT_FAILED")
        raise


def queue_upload(batch_id: int) -> None:
    """Queue a stored upload's import (after its commit): what the API's import and the
    console's do. If the queue is unreachable, the sweeper finds the batch later."""
    try:
        enqueue(import_upload, batch_id)
    except Exception:
        log.exception("could not queue upload %s; the sweeper will pick it up", batch_id)


def requeue_stale_uploads(settings: Settings) -> int:
    """Queue again the uploads whose task was lost (called by the sweeper)."""
    with session_scope(settings.resolved_database_url) as session:
        lost = uploads.stale(session, now=utcnow(), older_than=settings.lease_seconds)
    for batch_id in lost:
        enqueue(import_upload, batch_id, priority=PRIORITY_NORMAL)
    if lost:
        log.info("re-queued %d upload(s)", len(lost))
    return len(lost)
