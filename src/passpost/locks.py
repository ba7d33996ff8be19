"""A lock that serialises schema creation across processes starting at the same moment.

Two ``passpost api`` started together on an empty database would both run the migrations
(and both create the queue's tables); the second fails on ``alembic_version``'s unique key.
PostgreSQL gets a session advisory lock; a SQLite file gets an ``flock`` on a file beside it.
"""

from __future__ import annotations

import fcntl
import os
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
    if not url.startswith("sqlite"):
        return None
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
