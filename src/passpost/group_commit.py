"""Group commit on SQLite: many writers' transactions committed together, one fsync for all.

With ``synchronous=FULL`` every SQLite commit waits for the disk, and only one writer runs
at a time. ``GroupCommitter`` runs the jobs handed to it one after the other in a single
writer transaction, each inside its own SAVEPOINT (a job that raises leaves no trace and
fails alone), then commits once and answers every caller. A caller gets its result only
after the commit: what it returns is durable.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from passpost.db import begin_write

T = TypeVar("T")
Job = Callable[[Session], Any]

log = logging.getLogger(__name__)

MAX_GROUP = 64


class GroupCommitter:
    """One writer thread per database URL that commits the jobs waiting for it together."""

    def __init__(self, engine: Engine, *, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._max_group = max_group
        self._jobs: queue.SimpleQueue[tuple[Job, Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="passpost-group-commit", daemon=True)
        self._thread.start()

    def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job(session)`` in the next group; return its result once committed."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future.result()

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

    def _commit(self, group: list[tuple[Job, Future[Any]]]) -> None:
        try:
            self._commit_group(group)
        finally:
            # Whatever went wrong (even a BaseException), no caller waits forever.
            for _, future in group:
                if not future.done():
                    future.set_exception(RuntimeError("the group commit was interrupted"))

    def _commit_group(self, group: list[tuple[Job, Future[Any]]]) -> None:
        results: list[tuple[Future[Any], Any]] = []
        session = Session(bind=self._engine, expire_on_commit=False)
        try:
            begin_write(session)
            for job, future in group:
                try:
                    with session.begin_nested():
                        results.append((future, job(session)))
                except Exception as exc:  # noqa: BLE001 - handed to that job's caller
                    future.set_exception(exc)
                # Each job starts with an empty identity map: some write rows with Core
                # statements, which would leave an ORM object loaded by an earlier job stale.
                session.expunge_all()
            session.commit()
        except Exception as exc:
            log.exception("group commit of %d jobs failed", len(results))
            session.rollback()
            for future, _ in results:
                future.set_exception(exc)
            return
        finally:
            session.close()
        for future, result in results:
            future.set_result(result)


@lru_cache(maxsize=4)
def group_committer(engine: Engine) -> GroupCommitter:
    """The process's group committer for a SQLite engine."""
    return GroupCommitter(engine)
