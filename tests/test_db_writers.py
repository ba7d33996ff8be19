"""SQLite writers queue on a gate (across threads and processes), released however their
transaction ends, and by a killed process."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from passpost import db
from passpost.db import _session_factory, begin_write, session_scope


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # A leaked gate then fails within a second instead of after 30.
    monkeypatch.setattr(db, "_GATE_TIMEOUT", 1.0)
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    with session_scope(url, write=True) as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    return url


def _increment(url: str) -> None:
    with session_scope(url, write=True) as session:
        n = session.execute(text("SELECT n FROM counter")).scalar_one()
        session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})


def test_concurrent_read_then_write_transactions_lose_nothing(url: str) -> None:
    threads = [
        threading.Thread(target=lambda: [_increment(url) for _ in range(25)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 200


def test_a_rolled_back_writer_releases_the_gate(url: str) -> None:
    with pytest.raises(ZeroDivisionError), session_scope(url, write=True) as session:
        session.execute(text("UPDATE counter SET n = 99"))
        _ = 1 / 0
    assert _gate_free(url)
    _increment(url)
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 1


def test_a_writer_closed_without_commit_releases_the_gate(url: str) -> None:
    session = _session_factory(url)()
    begin_write(session)
    session.execute(text("UPDATE counter SET n = 99"))
    assert not _gate_free(url)
    session.close()
    assert _gate_free(url)
    _increment(url)
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 1


def test_a_second_writer_waits_for_the_first(url: str) -> None:
    first = _session_factory(url)()
    begin_write(first)
    first.execute(text("UPDATE counter SET n = 10"))
    second_done = threading.Event()
    thread = threading.Thread(target=lambda: (_increment(url), second_done.set()))
    thread.start()
    assert not second_done.wait(0.3)
    first.commit()
    first.close()
    thread.join()
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 11


def test_commits_are_synced_to_disk(url: str) -> None:
    # synchronous=FULL (2): NORMAL (1) in WAL mode can lose the last commits on a power loss.
    with session_scope(url) as session:
        assert session.execute(text("PRAGMA synchronous")).scalar_one() == 2
        assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


@pytest.mark.parametrize("memory", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_has_writers_too(
    memory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with session_scope(memory, write=True) as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
        assert session.execute(text("SELECT n FROM t")).scalar_one() == 1
    assert list(tmp_path.iterdir()) == []  # no gate files for a database without a file


def _gate_free(url: str) -> bool:
    """Whether no process (this one included) holds the database's writer gate."""
    path = Path(url.removeprefix("sqlite:///") + ".writer")
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the probe's own lock
    return True


def _writer_process(url: str, body: str) -> subprocess.Popen[str]:
    """Another process writing to ``url`` (``session_scope`` and ``text`` imported)."""
    script = "from sqlalchemy import text\nfrom passpost.db import session_scope\n"
    script += f"url = {url!r}\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )


@pytest.fixture
def holder(url: str) -> Iterator[subprocess.Popen[str]]:
    """A process inside a writer transaction until it is killed."""
    proc = _writer_process(
        url,
        """
        import time
        with session_scope(url, write=True) as session:
            session.execute(text("UPDATE counter SET n = 100"))
            print("held", flush=True)
            time.sleep(120)
        """,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.slow
def test_a_writer_of_another_process_holds_the_gate(
    url: str, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_GATE_TIMEOUT", 0.3)
    with pytest.raises(TimeoutError):
        _increment(url)
    assert not _gate_free(url)


@pytest.mark.slow
def test_a_killed_holder_releases_the_gate(url: str, holder: subprocess.Popen[str]) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    _increment(url)  # within the fixture's 1 s, not SQLite's 30 s busy timeout
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 1
    assert _gate_free(url)


@pytest.mark.slow
def test_a_writer_that_gave_up_waiting_leaves_no_lock_behind(
    url: str, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_GATE_TIMEOUT", 0.3)
    with pytest.raises(TimeoutError):
        _increment(url)
    holder.kill()
    holder.wait()
    # The thread that waited in the kernel for this process gets the gate, finds nobody
    # waiting any more and lets it go.
    deadline = time.monotonic() + 10
    while not _gate_free(url) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gate_free(url)
    monkeypatch.setattr(db, "_GATE_TIMEOUT", 1.0)
    _increment(url)


@pytest.mark.slow
def test_a_process_writing_back_to_back_lets_another_in_at_its_next_turn(url: str) -> None:
    with session_scope(url, write=True) as session:
        session.execute(text("CREATE TABLE log (who TEXT, seq INTEGER)"))
    # The other process holds the write lock 20 ms at a time and asks for it again at once,
    # from one thread (its turn comes back to it before any other thread of its own).
    busy = _writer_process(
        url,
        """
        import time
        for seq in range(300):
            with session_scope(url, write=True) as session:
                session.execute(text("INSERT INTO log VALUES ('busy', :seq)"), {"seq": seq})
                time.sleep(0.02)
        """,
    )
    try:
        overtaken = []
        while _busy_commits(url) < 5:
            time.sleep(0.01)
        for _ in range(5):
            asked = _busy_commits(url)
            with session_scope(url, write=True) as session:
                overtaken.append(_busy_commits(url, session) - asked)
                session.execute(text("INSERT INTO log VALUES ('other', 0)"))
            time.sleep(0.05)
        assert busy.poll() is None, "the busy process ended before the other wrote"
    finally:
        busy.kill()
        busy.wait()
    # The transaction running when this one asked, and one that had just asked: SQLite's
    # busy handler alone lets the busy process win nearly every time (hundreds).
    assert max(overtaken) <= 2, overtaken


def _busy_commits(url: str, session: object = None) -> int:
    if session is None:
        with session_scope(url) as reader:
            return _busy_commits(url, reader)
    count = session.execute(text("SELECT count(*) FROM log WHERE who = 'busy'"))  # type: ignore[attr-defined]
    return int(count.scalar_one())


def test_the_wal_is_checkpointed_beside_the_writers_not_in_their_commits(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.Checkpointer, "EVERY", 0.01)
    with session_scope(url) as session:
        # A commit that crossed SQLite's 1,000 pages would copy them, holding the gate.
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        session.execute(text("CREATE TABLE blob (data BLOB)"))
    database = Path(url.removeprefix("sqlite:///"))
    before = database.stat().st_size
    for _ in range(20):
        with session_scope(url, write=True) as session:
            session.execute(text("INSERT INTO blob VALUES (randomblob(10000))"))
    # 200 kB written: far below the 1,000 pages SQLite waits for, copied all the same.
    deadline = time.monotonic() + 10
    while database.stat().st_size < before + 200_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert database.stat().st_size >= before + 200_000


def test_the_wal_starts_over_while_a_writer_writes_back_to_back(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db.Checkpointer, "EVERY", 0.01)
    with session_scope(url, write=True) as session:
        session.execute(text("CREATE TABLE blob (data BLOB)"))
    written = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        with session_scope(url, write=True) as session:
            session.execute(text("INSERT INTO blob VALUES (randomblob(100000))"))
        written += 100_000
        time.sleep(0.001)  # a thread's lock is not fair: the checkpointer gets its turn
    # Each checkpoint is completed holding the gate: the next writer starts the WAL over
    # instead of appending to it for as long as anybody writes.
    wal = Path(url.removeprefix("sqlite:///") + "-wal")
    assert wal.stat().st_size < written / 2, (wal.stat().st_size, written)


def test_a_disposed_engine_leaves_the_whole_database_in_its_file(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test databases are copies of a migrated template file, made after its engine
    # was disposed: the checkpoint thread must not keep a connection (and the WAL) open.
    monkeypatch.setattr(db.Checkpointer, "EVERY", 5.0)
    for n in (1, 2):  # the second while the thread waits to checkpoint again
        with session_scope(url, write=True) as session:
            session.execute(text("UPDATE counter SET n = :n"), {"n": n})
        time.sleep(0.2)
    db.get_engine(url).dispose()
    copy = tmp_path / "copy.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    with closing(sqlite3.connect(copy)) as connection:
        assert connection.execute("SELECT n FROM counter").fetchone() == (2,)


def test_a_commit_that_changed_nothing_wakes_no_checkpoint(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[None] = []
    monkeypatch.setattr(db.Checkpointer, "committed", lambda _self: woken.append(None))
    with session_scope(url) as session:
        session.execute(text("SELECT n FROM counter")).all()
    with session_scope(url, write=True) as session:
        session.execute(text("SELECT n FROM counter")).all()
    assert woken == []
    _increment(url)
    assert len(woken) == 1
