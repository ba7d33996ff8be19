"""``passpost backup DEST``: a consistent online copy that ``passpost serve`` runs on as is.

SQLite's backup API copies each database as of one instant while the service keeps
running (in WAL mode readers and the one writer go on). DEST gets ``passpost.db``,
``queue.db`` and ``secret.key`` — the layout of a data directory. The database and the
queue are copied one after the other, not at one instant together: harmless, because the
ledger is the truth (a task without its rows finds nothing; rows without their task are
found by the sweeper once their lease runs out).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from passpost import secrets
from passpost.config import Settings
from passpost.locks import sqlite_path


class BackupError(Exception):
    """The backup cannot be made (the message says why)."""


@dataclass(frozen=True)
class Backup:
    dest: Path
    database_bytes: int
    queue_bytes: int | None  # None: the queue is not a SQLite file (nothing to copy)
    keys: int


def copy_sqlite(source: Path, dest: Path) -> int:
    """Copy a live SQLite database with the backup API; the copy's size in bytes."""
    if not source.exists():
        raise BackupError(f"{source} does not exist")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        # One step (pages=-1): a single read transaction, so the copy is one instant.
        src.backup(dst)
        if dst.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise BackupError(f"the copy of {source} failed its integrity check")
    finally:
        dst.close()
        src.close()
    os.chmod(partial, 0o600)
    os.replace(partial, dest)
    return dest.stat().st_size


def backup(settings: Settings, dest: Path) -> Backup:
    """Copy the SQLite database, the SQLite queue and the secret key(s) into ``dest``."""
    database = sqlite_path(settings.resolved_database_url)
    if database is None:
        raise BackupError(
            "the database is not SQLite: back it up with pg_dump (README, Deploying) "
            "and keep the secret key with it"
        )
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The keys before and after the copy: a rotation running meanwhile loses none.
    before = secrets.secret_keys()
    database_bytes = copy_sqlite(database, dest / "passpost.db")
    queue = sqlite_path(settings.resolved_queue_url)
    queue_bytes = copy_sqlite(queue, dest / "queue.db") if queue is not None else None
    after = secrets.secret_keys()
    keys = after + tuple(k for k in before if k not in after)
    secrets.write_key_file(secrets.key_file(dest), keys)
    return Backup(dest, database_bytes, queue_bytes, len(keys))
