"""Creating a request end to end: the import's transaction, then its queue work.

The one place that owns an import's transaction (the service functions never commit), shared
by the import call, ``passpost send`` and the console's Send page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from passpost.config import Settings
from passpost.db import begin_write, utcnow
from passpost.distribution.schemas import PassContent
from passpost.distribution.service import ImportResult, check_upload, import_pass
from passpost.group_commit import group_committer

log = logging.getLogger(__name__)


def commit_import(
    session: Session,
    *,
    settings: Settings,
    upload: bytes,
    content: PassContent,
    created_by: str,
    must_exist: bool = False,
) -> ImportResult:
    """``import_pass`` in its own writer transaction, committed before it returns.

    The import call, ``passpost send`` and the console all create requests through this.
    """
    # Validation needs no database: done before the transaction takes SQLite's write lock.
    template, report = check_upload(upload, content=content, settings=settings)

    def job(writer: Session) -> ImportResult:
        return import_pass(
            writer,
            settings=settings,
            upload=upload,
            content=content,
            created_by=created_by,
            must_exist=must_exist,
            report=report,
            template=template,
        )

    engine = session.get_bind()
    if isinstance(engine, Engine) and engine.dialect.name == "sqlite":
        # One SQLite writer at a time, and each commit waits for the disk: concurrent
        # imports are committed together (SPEC §3, group commit).
        session.commit()
        return group_committer(engine).run(job)
    try:
        begin_write(session)
        result = job(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def queue_import(result: ImportResult, *, priority: bool, start_at: datetime | None) -> None:
    """After the commit: queue the dispatch (and the pushes of a new version).

    If the queue is unreachable the sweeper finds the work in the ledger.
    """
    from passpost.distribution.tasks import dispatch_request
    from passpost.passkit.tasks import push_pass_update
    from passpost.queue import PRIORITY_HIGH, PRIORITY_NORMAL, enqueue

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
