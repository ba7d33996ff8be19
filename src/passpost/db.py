"""Database engine, sessions and migrations. The caller owns the transaction."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from passpost.locks import WriterGate, sqlite_path

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# 64-bit ids everywhere; on SQLite only "INTEGER PRIMARY KEY" autoincrements (and is 64-bit).
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def placeholder(paramstyle: str) -> str:
    """The driver's positional parameter mark: ``?`` (sqlite3, qmark) or ``%s`` (psycopg)."""
    return "?" if paramstyle == "qmark" else "%s"


def bind_processor(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """How SQLAlchemy converts a column type's values for the driver, with the dialect's
    own type (SQLite's text form of a datetime, say); None: as they are."""
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def dialect_insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of the session's dialect, so that ON CONFLICT works on SQLite and PostgreSQL."""
    return insert_for(session.get_bind().dialect.name, table)


def insert_for(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``dialect_insert`` for a dialect's name."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would BEGIN lazily (DEFERRED) on the first write; passpost begins itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # A 200 must survive a power loss, not only a killed process (SPEC §3): NORMAL in WAL
    # mode may lose the last commits. Measured here: 3.7 ms per commit more than NORMAL.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A commit does not checkpoint the WAL itself (``Checkpointer`` does, outside the gate).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


IMMEDIATE = "passpost_immediate"
_GATE = "passpost_writer_gate"
_CHANGES = "passpost_changes_at_begin"
_GATE_TIMEOUT = 30.0


def _sqlite_begin(gate: WriterGate, connection: Any) -> None:
    # A deferred transaction that reads, then writes after another writer committed, fails
    # at once with "database is locked" (its snapshot is stale). Transactions that read
    # then write take the write lock at BEGIN instead, and wait for each other.
    # What the connection changed so far: a COMMIT that changed nothing has no pages for
    # the checkpointer (``_sqlite_end``).
    connection.info[_CHANGES] = connection.connection.dbapi_connection.total_changes
    if not connection.get_execution_options().get(IMMEDIATE):
        connection.exec_driver_sql("BEGIN")
        return
    # Writers queue on a gate first, those of other processes too: SQLite's busy handler
    # polls with sleeps of up to 100 ms, so under contention the write lock sat idle
    # between holders, and a process handing it among its own threads kept the others out.
    gate.acquire(_GATE_TIMEOUT)
    connection.info[_GATE] = gate
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release_gate(connection.info)
        raise


def _release_gate(info: dict[Any, Any]) -> None:
    gate = info.pop(_GATE, None)
    if gate is not None:
        gate.release()


def _sqlite_end(checkpointer: Checkpointer | None, connection: Any, statement: str) -> None:
    # Runs before SQLAlchemy's own COMMIT/ROLLBACK, which then finds no open transaction
    # (a no-op in pysqlite): the gate is released only once the transaction really ended.
    dbapi = connection.connection.dbapi_connection
    if _GATE in connection.info:
        try:
            dbapi.execute(statement)
        finally:
            _release_gate(connection.info)
    changes = connection.info.pop(_CHANGES, None)
    if checkpointer is not None and statement == "COMMIT" and changes != dbapi.total_changes:
        checkpointer.committed()


class Checkpointer:
    """Copies a SQLite database's WAL into the database file, in a thread of its own.

    SQLite's own checkpoint runs inside the COMMIT that crossed 1,000 WAL pages: it copies
    them and syncs the database file (measured here under load: 50–500 ms, in ~6 % of the
    expansion's commits) while the committer still holds the writer gate, and every other
    writer waits for it. Here a passive checkpoint (no write lock needed) copies and syncs
    the bulk of the pages first; a second one, holding the gate, copies the few pages
    committed meanwhile, so that the checkpoint is complete and the next writer starts
    the WAL over (else it would grow without end). At most every ``EVERY`` seconds while
    there are commits; the thread ends when they stop.
    """

    EVERY = 0.5
    IDLE = 30.0

    def __init__(self, path: Path, gate: WriterGate) -> None:
        self._path = path
        self._gate = gate
        self._due = threading.Event()
        self._busy = threading.Lock()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Note a commit: its pages are checkpointed soon."""
        self._due.set()
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="passpost-checkpoint", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        try:
            while self._due.wait(self.IDLE):
                self._due.clear()
                with self._busy:
                    self._checkpoint()
                time.sleep(self.EVERY)
        except (sqlite3.Error, TimeoutError) as exc:
            log.warning("checkpointing %s failed: %r", self._path, exc)
        finally:
            with self._starting:
                self._thread = None

    def _checkpoint(self) -> None:
        # A connection of its own, closed at once: when an engine is disposed, its last
        # connection's close checkpoints the whole WAL and removes it (the file alone is
        # then the database), as without this thread. mode=rw: a database deleted
        # meanwhile is not created again, empty.
        uri = f"file:{self._path}?mode=rw"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._gate.acquire(_GATE_TIMEOUT)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                self._gate.release()

    def idle(self) -> None:
        """Wait until no checkpoint is under way (its connection closed)."""
        with self._busy:
            pass


def make_engine(url: str) -> Engine:
    """Create an engine with the pragmas and pool settings passpost relies on."""
    if url.startswith("sqlite"):
        file = sqlite_path(url)
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        # A file's pool keeps as many connections as the thread pool (anyio: 40) has
        # threads: each overflow connection was opened (WAL pragma and all) and closed
        # again per request. (An in-memory database has one connection per thread.)
        pool = {"pool_size": 40, "max_overflow": 40} if file else {}
        connect_args = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, connect_args=connect_args, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        gate = WriterGate(file)
        checkpointer = Checkpointer(file, gate) if file else None
        event.listen(engine, "begin", partial(_sqlite_begin, gate))
        event.listen(engine, "commit", lambda conn: _sqlite_end(checkpointer, conn, "COMMIT"))
        event.listen(engine, "rollback", lambda conn: _sqlite_end(None, conn, "ROLLBACK"))
        if checkpointer is not None:
            # After dispose() the file alone holds the database (the last close removed
            # the WAL) only if no checkpoint connection is open then.
            event.listen(engine, "engine_disposed", lambda _engine: checkpointer.idle())
        # A connection given back with its transaction still open must not keep the gate.
        event.listen(engine.pool, "checkin", lambda _dbapi, record: _release_gate(record.info))
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@lru_cache(maxsize=4)
def get_engine(url: str) -> Engine:
    """The process-wide engine for a URL."""
    return make_engine(url)


@lru_cache(maxsize=4)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def new_session(url: str) -> Session:
    """A session of the database at ``url``; the caller owns its transaction."""
    return _session_factory(url)()


def begin_write(session: Session) -> None:
    """Start the session's next transaction as a writer (BEGIN IMMEDIATE on SQLite).

    For transactions that read and then write; a no-op on PostgreSQL.
    """
    session.connection(execution_options={IMMEDIATE: True})


def writes(session: Session) -> bool:
    """Whether ``session``'s transaction may write without failing on a stale snapshot.

    A SQLite transaction begun as a reader that writes after another connection committed
    fails at once ("database is locked"); writers begin with ``begin_write``.
    """
    if session.get_bind().dialect.name != "sqlite":
        return True
    return bool(session.connection().get_execution_options().get(IMMEDIATE))


@contextmanager
def session_scope(url: str, *, write: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    ``write=True`` for a transaction that reads and then writes (see ``begin_write``).
    """
    session = new_session(url)
    if write:
        begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to an Alembic revision (the newest by default).

    Safe when several processes start at once: they take turns (``locks.startup_lock``),
    and whoever comes second finds the schema current and does nothing.
    """
    from alembic import command

    from passpost.locks import startup_lock

    config = _alembic_config(url)
    config.attributes["engine"] = get_engine(url)
    with startup_lock(url):
        command.upgrade(config, revision)


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The newest Alembic revision(s) this code expects."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads())
