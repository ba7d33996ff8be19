"""Group commit on SQLite: many writers' transactions committed together, one fsync for all.

With ``synchronous=FULL`` every SQLite commit waits for the disk, and only one writer runs
at a time. ``GroupCommitter`` runs the jobs handed to it one after the other in a single
writer transaction, each inside its own SAVEPOINT (a job that raises leaves no trace and
fails alone), then commits once and answers every caller. A caller gets its result only
after the commit: what it returns is durable.

Jobs handed over with ``defers=True`` may leave rows to insert (or update) to the end of
the group (``deferred``): every job's rows of one statement go in one executemany, instead
of one statement each per job. Such a job reads what it deferred itself, and what earlier
jobs of the group deferred, from ``DeferredWrites``; any other job runs only after the
deferred rows are written. Should writing them fail, the group is rolled back and its jobs
run again, their rows written at once: one that fails then fails alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from passpost.db import begin_write

T = TypeVar("T")
Job = Callable[[Session], Any]

log = logging.getLogger(__name__)

MAX_GROUP = 64
_DEFERRED = "passpost_deferred_writes"


class DeferredWrites:
    """Rows of the group's jobs waiting to be written, by statement, in the jobs' order.

    The rows of the job running now are kept apart until it succeeds: a job that raises
    leaves none behind.
    """

    def __init__(self) -> None:
        self._kept: dict[Any, list[dict[str, Any]]] = {}
        self._job: dict[Any, list[dict[str, Any]]] = {}

    def add(self, statement: Any, row: dict[str, Any]) -> None:
        """Write ``row`` with ``statement`` when the group ends (statements in first use
        order: a row's parents must have been deferred, or written, before it)."""
        self._job.setdefault(statement, []).append(row)

    def rows(self, statement: Any) -> Iterator[dict[str, Any]]:
        """The rows deferred with ``statement`` so far in this group, oldest first."""
        yield from self._kept.get(statement, ())
        yield from self._job.get(statement, ())

    def __bool__(self) -> bool:
        return bool(self._kept or self._job)

    def _end_job(self, *, keep: bool) -> None:
        if keep:
            for statement, rows in self._job.items():
                self._kept.setdefault(statement, []).extend(rows)
        self._job = {}

    def _write(self, session: Session) -> None:
        connection = session.connection()
        for statement, rows in self._kept.items():
            connection.execute(statement, rows)
        self._kept = {}


def deferred(session: Session) -> DeferredWrites | None:
    """The group's deferred writes when ``session`` runs a job handed over with
    ``defers=True``; None when the job must write at once."""
    return session.info.get(_DEFERRED)


@dataclass
class _Entry:
    job: Job
    future: Future[Any]
    defers: bool
    result: Any = field(default=None)


class GroupCommitter:
    """One writer thread per database URL that commits the jobs waiting for it together."""

    def __init__(self, engine: Engine, *, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._max_group = max_group
        self._jobs: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="passpost-group-commit", daemon=True)
        self._thread.start()

    def run(self, job: Callable[[Session], T], *, defers: bool = False) -> T:
        """Run ``job(session)`` in the next group; return its result once committed.

        ``defers``: the job may defer rows (``deferred(session)``) to the group's end.
        """
        return self.submit(job, defers=defers).result()

    def submit(self, job: Callable[[Session], T], *, defers: bool = False) -> Future[T]:
        """``run`` without waiting: the future has the result once it is committed."""
        future: Future[T] = Future()
        self._jobs.put(_Entry(job, future, defers))
        return future

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            group = [self._jobs.get()]
            while len(group) < self._max_group:
                try:
                    group.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(group)
            except BaseException:  # the thread must outlive any one group
                log.exception("group commit thread: a job escaped its group")

    def _commit(self, group: list[_Entry]) -> None:
        try:
            if not self._commit_group(group, defer=True):
                # Writing the deferred rows failed: again, each job's rows written at once.
                self._commit_group([e for e in group if not e.future.done()], defer=False)
        finally:
            # Whatever went wrong (even a BaseException), no caller waits forever.
            for entry in group:
                if not entry.future.done():
                    entry.future.set_exception(RuntimeError("the group commit was interrupted"))

    def _commit_group(self, group: list[_Entry], *, defer: bool) -> bool:
        """Run and commit ``group``; False when its deferred rows could not be written."""
        done: list[_Entry] = []
        session = Session(bind=self._engine, expire_on_commit=False)
        writes = DeferredWrites()
        try:
            begin_write(session)
            for entry in group:
                if writes and not entry.defers:
                    writes._write(session)  # a job that knows nothing of them reads them
                self._run_job(session, entry, writes if defer and entry.defers else None)
                if not entry.future.done():
                    done.append(entry)
            if writes:
                writes._write(session)
            session.commit()
        except Exception as exc:
            session.rollback()
            if writes:
                log.warning("deferred rows of %d jobs failed (%s); each job again", len(done), exc)
                return False
            log.exception("group commit of %d jobs failed", len(done))
            for entry in done:
                entry.future.set_exception(exc)
            return True
        finally:
            session.close()
        for entry in done:
            entry.future.set_result(entry.result)
        return True

    @staticmethod
    def _run_job(session: Session, entry: _Entry, writes: DeferredWrites | None) -> None:
        session.info[_DEFERRED] = writes
        try:
            with session.begin_nested():
                entry.result = entry.job(session)
        except Exception as exc:  # noqa: BLE001 - handed to that job's caller
            entry.future.set_exception(exc)
        finally:
            session.info.pop(_DEFERRED, None)
            if writes is not None:
                writes._end_job(keep=not entry.future.done())
        # Each job starts with an empty identity map: some write rows with Core
        # statements, which would leave an ORM object loaded by an earlier job stale.
        session.expunge_all()


@lru_cache(maxsize=4)
def group_committer(engine: Engine) -> GroupCommitter:
    """The process's group committer for a SQLite engine."""
    return GroupCommitter(engine)
