"""Creating a request end to end: the import's transaction, then its queue work.

The one place that owns an import's transaction (the service functions never commit), shared
by the import and generation calls, ``passpost send`` and the console's Send page.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from passpost import pkpass
from passpost.config import Settings, get_settings
from passpost.db import begin_write, utcnow
from passpost.distribution.personal import Template
from passpost.distribution.schemas import PassContent
from passpost.distribution.service import (
    ImportResult,
    check_upload,
    checked_upload,
    import_pass,
)
from passpost.group_commit import group_committer

log = logging.getLogger(__name__)

T = TypeVar("T")


def commit_job(session: Session, job: Callable[[Session], T], *, defers: bool = False) -> T:
    """``job(writer)`` in a writer transaction, committed before this returns.

    On SQLite (one writer at a time, and each commit waits for the disk) concurrent jobs
    are committed together (SPEC §3, group commit); ``session``'s own transaction is ended
    first. ``defers``: the job may leave rows to the group's end (``group_commit``).
    On PostgreSQL ``job`` runs in ``session``: imports of different passes run side by side
    there (tried: group-committing them too gave the benchmark no more imports/s,
    only a shorter tail, 4.5 s -> 2.4 s, while serialising every import's round trips).
    """
    engine = session.get_bind()
    if isinstance(engine, Engine) and engine.dialect.name == "sqlite":
        session.commit()
        return group_committer(engine).run(job, defers=defers)
    try:
        begin_write(session)
        result = job(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


@dataclass(frozen=True)
class _Import:
    """One import's inputs: how it is checked, and its job for the writer transaction."""

    settings: Settings
    upload: bytes
    content: PassContent
    created_by: str
    must_exist: bool

    def check(self) -> tuple[Template | None, pkpass.Report]:
        return check_upload(self.upload, content=self.content, settings=self.settings)

    def remembered(self) -> tuple[Template | None, pkpass.Report] | None:
        """The check's outcome if it is remembered (the upload hashed, nothing validated)."""
        return checked_upload(self.upload, content=self.content, settings=self.settings)

    def job(
        self, checked: tuple[Template | None, pkpass.Report]
    ) -> Callable[[Session], ImportResult]:
        template, report = checked
        return partial(
            import_pass,
            settings=self.settings,
            upload=self.upload,
            content=self.content,
            created_by=self.created_by,
            must_exist=self.must_exist,
            report=report,
            template=template,
        )


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

    ``passpost send`` and the console create requests through this, the import call
    through ``commit_import_async``.
    """
    return _commit(session, _Import(settings, upload, content, created_by, must_exist))


def _commit(session: Session, item: _Import) -> ImportResult:
    # Validation needs no database: done before the transaction takes SQLite's write lock.
    checked = item.check()
    # A shared pass's ledger rows wait for the group's end; a template's are read back.
    return commit_job(session, item.job(checked), defers=checked[0] is None)


# Uploads up to this size are looked up in the validation cache on the event loop (their
# hash costs ~0.2 ms); larger ones, and any upload not validated lately, in a thread.
_HASH_ON_LOOP_BYTES = 256 * 1024


async def commit_import_async(
    session: Session,
    *,
    settings: Settings,
    upload: bytes,
    content: PassContent,
    created_by: str,
    must_exist: bool = False,
) -> ImportResult:
    """``commit_import`` for the event loop: on SQLite (a pass validated lately) no thread
    of the pool is taken, or waits, for the validation or the group commit."""
    item = _Import(settings, upload, content, created_by, must_exist)
    engine = session.get_bind()
    if not (isinstance(engine, Engine) and engine.dialect.name == "sqlite"):
        return await to_thread.run_sync(_commit, session, item)
    checked = item.remembered() if len(upload) <= _HASH_ON_LOOP_BYTES else None
    if checked is None or session.in_transaction():
        checked = await to_thread.run_sync(_check_and_end, session, item)
    committed = group_committer(engine).submit(item.job(checked), defers=checked[0] is None)
    return await asyncio.wrap_future(committed)


def _check_and_end(session: Session, item: _Import) -> tuple[Template | None, pkpass.Report]:
    session.commit()  # the group committer writes in a session of its own
    return item.check()


def queue_import(result: ImportResult, *, priority: bool, start_at: datetime | None) -> None:
    """After the commit: queue the dispatch (and the pushes of a new version), now.

    For callers that end soon after (``passpost send``). If the queue is unreachable the
    sweeper finds the work in the ledger.
    """
    _queue([_Queued(result, priority, start_at, get_settings().resolved_queue_url)])


def queue_import_soon(result: ImportResult, *, priority: bool, start_at: datetime | None) -> None:
    """``queue_import`` done by this process's queue feeder thread, off the request path.

    The request is committed already: the queue only says "look now". Imports waiting for
    the feeder go on the queue together (one queue write, on SQLite one fsync, for many);
    if the process dies first, the sweeper finds their work in the ledger.
    """
    # The queue is the one configured now (the feeder may run after settings changed).
    _feeder().put(_Queued(result, priority, start_at, get_settings().resolved_queue_url))


@dataclass(frozen=True)
class _Queued:
    result: ImportResult
    priority: bool
    start_at: datetime | None
    queue_url: str


def _queue(items: list[_Queued]) -> None:
    by_url: dict[str, list[_Queued]] = {}
    for item in items:
        by_url.setdefault(item.queue_url, []).append(item)
    for url, queued in by_url.items():
        _queue_to(url, queued)


def _queue_to(url: str, items: list[_Queued]) -> None:
    from passpost.distribution.tasks import dispatch_request, dispatch_requests, expand_recipients
    from passpost.passkit.tasks import push_pass_update
    from passpost.queue import PRIORITY_HIGH, PRIORITY_NORMAL
    from passpost.queue import enqueue as enqueue_anywhere

    enqueue = partial(enqueue_anywhere, url=url)
    now = utcnow()
    due: dict[int, list[int]] = {}
    pushed: set[int] = set()
    try:
        for item in items:
            level = PRIORITY_HIGH if item.priority else PRIORITY_NORMAL
            if item.result.staged:
                # Expanded now whatever the start time; it feeds the sends chunk by chunk.
                enqueue(expand_recipients, item.result.request_id, priority=level)
            if item.start_at is not None and item.start_at > now:
                enqueue(dispatch_request, item.result.request_id, priority=level, eta=item.start_at)
            elif not item.result.staged:
                due.setdefault(level, []).append(item.result.request_id)
        for level, request_ids in due.items():
            if len(request_ids) == 1:
                enqueue(dispatch_request, request_ids[0], priority=level)
            else:
                enqueue(dispatch_requests, request_ids, priority=level)
        for item in items:
            pass_id = item.result.pass_id
            if item.result.version > 1 and pass_id not in pushed:
                pushed.add(pass_id)  # one push task sends every due push of the pass
                enqueue(push_pass_update, pass_id, priority=PRIORITY_HIGH)
    except Exception:
        ids = [item.result.request_id for item in items]
        log.exception("could not queue requests %s; the sweeper will pick them up", ids)


class _Feeder:
    """One thread putting the committed imports waiting for it on the queue together."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="passpost-queue-feeder", daemon=True)
        self._thread.start()

    def put(self, item: _Queued) -> None:
        self._items.put(item)

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            items = [self._items.get()]
            while len(items) < 512:
                try:
                    items.append(self._items.get_nowait())
                except queue.Empty:
                    break
            _queue(items)


_feeder_lock = threading.Lock()
_the_feeder: _Feeder | None = None


def _feeder() -> _Feeder:
    global _the_feeder
    with _feeder_lock:
        if _the_feeder is None:
            _the_feeder = _Feeder()
        return _the_feeder
