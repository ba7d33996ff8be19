"""Group commit: jobs that wait are committed together; a failing job fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from passpost.db import make_engine, session_scope
from passpost.group_commit import GroupCommitter, deferred


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'group.db'}"
    with session_scope(url, write=True) as session:
        session.execute(text("CREATE TABLE item (name TEXT UNIQUE)"))
    return url


def _insert(name: str):
    def job(session: Session) -> str:
        session.execute(text("INSERT INTO item (name) VALUES (:name)"), {"name": name})
        return name

    return job


RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release() -> None:
    RELEASE.clear()


def _hold_the_writer(pool: ThreadPoolExecutor, committer: GroupCommitter, name: str) -> Future[str]:
    """A job that keeps the writer busy until RELEASE, so that the next jobs queue up."""
    started = threading.Event()

    def job(session: Session) -> str:
        started.set()
        RELEASE.wait(30)
        return _insert(name)(session)

    future = pool.submit(committer.run, job)
    assert started.wait(30)
    return future


def _wait_until_queued(committer: GroupCommitter, count: int) -> None:
    deadline = time.monotonic() + 30
    while committer._jobs.qsize() < count:
        assert time.monotonic() < deadline, "the jobs never queued"
        time.sleep(0.01)


def _names(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.execute(text("SELECT name FROM item")).scalars())


def test_waiting_jobs_share_one_commit(url: str) -> None:
    engine = make_engine(url)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    committer = GroupCommitter(engine)
    with ThreadPoolExecutor(max_workers=11) as pool:
        futures = [_hold_the_writer(pool, committer, "first")]
        futures += [pool.submit(committer.run, _insert(f"job{i}")) for i in range(10)]
        _wait_until_queued(committer, 10)
        RELEASE.set()
        results = [future.result(10) for future in futures]
    assert results == ["first"] + [f"job{i}" for i in range(10)]
    assert len(commits) == 2  # the first job's group, then the ten that waited for it
    assert _names(url) == set(results)


def test_a_failing_job_leaves_no_trace_and_fails_alone(url: str) -> None:
    committer = GroupCommitter(make_engine(url))

    def half_done(session: Session) -> str:
        _insert("half")(session)
        raise ValueError("refused")

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [_hold_the_writer(pool, committer, "gate")]
        futures += [
            pool.submit(committer.run, job) for job in (_insert("a"), half_done, _insert("b"))
        ]
        _wait_until_queued(committer, 3)
        RELEASE.set()
        assert futures[1].result(10) == "a"
        with pytest.raises(ValueError, match="refused"):
            futures[2].result(10)
        assert futures[3].result(10) == "b"
    assert _names(url) == {"gate", "a", "b"}


def test_a_job_that_breaks_a_constraint_fails_alone(url: str) -> None:
    committer = GroupCommitter(make_engine(url))
    assert committer.run(_insert("x")) == "x"
    with pytest.raises(Exception, match="UNIQUE"):
        committer.run(_insert("x"))
    assert _names(url) == {"x"}


class _Base(DeclarativeBase):
    pass


class _Item(_Base):
    __tablename__ = "item"
    name: Mapped[str] = mapped_column(primary_key=True)
    note: Mapped[str | None]


def test_a_job_never_sees_an_object_an_earlier_job_of_its_group_loaded(url: str) -> None:
    """Jobs may write with Core statements: an ORM object another job of the group loaded
    before would be stale (the identity map does not reload it)."""
    with session_scope(url, write=True) as session:
        session.execute(text("ALTER TABLE item ADD COLUMN note TEXT"))
        session.execute(text("INSERT INTO item VALUES ('row', 'old')"))
    committer = GroupCommitter(make_engine(url))

    def load(session: Session) -> tuple[_Item, str | None]:
        item = session.get(_Item, "row")
        assert item is not None
        return item, item.note  # the object stays referenced (weakly mapped otherwise)

    def rewrite(session: Session) -> None:
        session.execute(text("UPDATE item SET note = 'new' WHERE name = 'row'"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [_hold_the_writer(pool, committer, "gate")]
        futures += [committer.submit(job) for job in (load, rewrite, load)]  # in this order
        _wait_until_queued(committer, 3)
        RELEASE.set()
        first, rewritten, last = (future.result(10) for future in futures[1:])
    assert (first[1], rewritten, last[1]) == ("old", None, "new")


_INSERT = text("INSERT INTO item (name) VALUES (:name)")  # one statement: one executemany


def _defer(name: str, *, then_fail: bool = False):
    def job(session: Session) -> str:
        writes = deferred(session)
        if writes is None:  # run again after the deferred rows failed: written at once
            session.execute(_INSERT, {"name": name})
        else:
            writes.add(_INSERT, {"name": name})
            assert [row["name"] for row in writes.rows(_INSERT)][-1] == name
        if then_fail:
            raise ValueError("refused")
        return name

    return job


def test_deferred_rows_are_written_together_and_a_failing_jobs_are_dropped(url: str) -> None:
    engine = make_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    committer = GroupCommitter(engine)
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [_hold_the_writer(pool, committer, "gate")]
        jobs = (_defer("a"), _defer("half", then_fail=True), _defer("b"), _insert("c"))
        futures += [committer.submit(job, defers=True) for job in jobs[:3]]  # in this order
        futures.append(committer.submit(jobs[3]))  # knows nothing of deferred rows
        _wait_until_queued(committer, 4)
        RELEASE.set()
        assert futures[1].result(10) == "a"
        with pytest.raises(ValueError, match="refused"):
            futures[2].result(10)
        assert [f.result(10) for f in futures[3:]] == ["b", "c"]
    assert _names(url) == {"gate", "a", "b", "c"}
    # "a" and "b" in one executemany, written before the job that does not defer.
    inserts = [s for s in statements if s.startswith("INSERT INTO item")]
    assert inserts == ["INSERT INTO item (name) VALUES (?)"] * 3


def test_when_deferred_rows_fail_each_job_runs_again_and_fails_alone(url: str) -> None:
    committer = GroupCommitter(make_engine(url))
    assert committer.run(_insert("taken")) == "taken"
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [_hold_the_writer(pool, committer, "gate")]
        jobs = (_defer("a"), _defer("taken"), _defer("b"))
        futures += [committer.submit(job, defers=True) for job in jobs]  # in this order
        _wait_until_queued(committer, 3)
        RELEASE.set()
        assert futures[0].result(10) == "gate"
        assert futures[1].result(10) == "a"
        with pytest.raises(Exception, match="UNIQUE"):
            futures[2].result(10)
        assert futures[3].result(10) == "b"
    assert _names(url) == {"taken", "gate", "a", "b"}
