"""Locks between processes: the schema lock at start-up and SQLite's writer gate.

Two ``passpost api`` started together on an empty database would both run the migrations
(and both create the queue's tables); the second fails on ``alembic_version``'s unique key.
PostgreSQL gets a session advisory lock; a SQLite file gets an ``flock`` on a file beside it.

SQLite lets one writer in at a time, and one waiting for it polls (its busy handler sleeps
up to 100 ms between tries), so a writer of one process could wait for many transactions
of another in a row. ``WriterGate`` queues the writers of one database in the kernel
instead: they are woken the moment the holder is done, and take turns across processes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Any constant works; this one reads "passpost" in ASCII (fits a signed bigint).
ADVISORY_KEY = 0x7061737370_6F7374


def libpq_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq takes it (without ``+psycopg``)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def is_postgres(url: str) -> bool:
    """True for a PostgreSQL URL (SQLAlchemy's or libpq's spelling)."""
    return url.startswith(("postgresql", "postgres://"))


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for in-memory databases and other backends)."""
    if not url.startswith("sqlite") or "///" not in url:
        return None  # "sqlite://" is an in-memory database too
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def startup_lock(url: str) -> Iterator[None]:
    """Hold the schema lock of the database at ``url`` (blocks until it is free)."""
    if is_postgres(url):
        with _advisory_lock(url):
            yield
        return
    path = sqlite_path(url)
    if path is None:
        yield
        return
    with _file_lock(path.with_name(path.name + ".lock")):
        yield


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    import psycopg

    # A session lock on its own connection: released when the connection closes, even if
    # this process dies while holding it.
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


class WriterGate:
    """One writer at a time for a SQLite database: across threads (a lock) and across
    processes (``flock`` on two files beside the database), taken before BEGIN IMMEDIATE
    and released once the transaction ended.

    Waiters of other processes block in ``flock`` and are woken at once. To keep a busy
    process from taking the gate again before they run, a process first takes the *turn*
    file, then the gate, and only then lets go of the turn: the next process in line
    holds the turn while it waits, so the holder cannot come back before it. The files
    are closed with the process, so a killed holder frees the gate. ``path`` None (an
    in-memory database) has only the thread lock.
    """

    def __init__(self, path: Path | None) -> None:
        self._local = threading.Lock()
        self._paths = None if path is None else (_beside(path, ".turn"), _beside(path, ".writer"))
        self._fds: tuple[int, int] | None = None
        self._pid = 0
        self._state = threading.Condition()
        self._helping = False  # a helper thread waits in flock for this process
        self._waiting = False  # the thread holding ``_local`` waits for that helper
        self._handed = False  # the helper got the gate for the waiting thread

    def acquire(self, timeout: float) -> None:
        """Take the gate, or raise ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if not self._local.acquire(timeout=timeout):
            raise TimeoutError(f"no SQLite write lock within {timeout:g} s")
        if self._paths is None:
            return
        try:
            self._acquire_files(deadline, timeout)
        except BaseException:
            self._local.release()
            raise

    def release(self) -> None:
        """Let the next writer in (of this process or another)."""
        if self._fds is not None and self._pid == os.getpid():
            fcntl.flock(self._fds[1], fcntl.LOCK_UN)
        self._local.release()

    def _acquire_files(self, deadline: float, timeout: float) -> None:
        turn, gate = self._files()
        with self._state:
            if not self._helping:
                step = _try_files(turn, gate)
                if step is None:
                    return
                self._helping = True
                threading.Thread(
                    target=self._help, args=(step,), name="passpost-writer-gate", daemon=True
                ).start()
            self._waiting = True
            try:
                while not self._handed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no SQLite write lock within {timeout:g} s")
                    self._state.wait(remaining)
                self._handed = False
            finally:
                self._waiting = False

    def _help(self, step: int) -> None:
        # Blocks in the kernel for the thread that wants the gate; if that thread gave up
        # meanwhile, the gate is let go at once.
        assert self._fds is not None
        turn, gate = self._fds
        got = False
        try:
            if step == 0:
                fcntl.flock(turn, fcntl.LOCK_EX)
            fcntl.flock(gate, fcntl.LOCK_EX)
            got = True
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
            with self._state:
                self._helping = False
                if got and self._waiting:
                    self._handed = True
                    self._state.notify_all()
                elif got:
                    fcntl.flock(gate, fcntl.LOCK_UN)

    def _files(self) -> tuple[int, int]:
        # A forked child gets its own open files: shared ones would share their flocks.
        if self._fds is None or self._pid != os.getpid():
            assert self._paths is not None
            self._paths[0].parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._fds = (
                os.open(self._paths[0], flags, 0o600),
                os.open(self._paths[1], flags, 0o600),
            )
            self._pid = os.getpid()
        return self._fds


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _try_files(turn: int, gate: int) -> int | None:
    """Take the turn and the gate without waiting: None when done, else the step to
    wait at (0: the turn is taken, 1: the turn is ours, the gate is taken)."""
    try:
        fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    try:
        fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 1
    fcntl.flock(turn, fcntl.LOCK_UN)
    return None
