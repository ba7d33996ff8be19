"""``GET /ready``: can this process do its work right now? (``/health`` only says it is alive.)

Checks that the database answers, that its schema is at the revision this code expects and
that the queue answers — each with a short timeout, concurrently, on connections of their
own, so that a probe answers within about a second even when a server is gone.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from passpost.config import get_settings
from passpost.db import get_engine, head_revisions
from passpost.errors import error_response
from passpost.locks import is_postgres
from passpost.queue import queue_depth

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])

TIMEOUT_SECONDS = 1
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="passpost-ready")


@dataclass(frozen=True)
class Check:
    """One readiness check: ``problem`` is None when it passed."""

    name: str
    detail: str
    problem: str | None = None


@lru_cache(maxsize=4)
def _probe_engine(url: str) -> Engine:
    if not is_postgres(url):
        return get_engine(url)
    # Not the app's pool: a probe must not queue behind busy requests, nor wait 30 s.
    return create_engine(
        url,
        pool_size=1,
        max_overflow=1,
        pool_timeout=TIMEOUT_SECONDS,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={TIMEOUT_SECONDS * 1000}",
        },
    )


def check_database(url: str) -> list[Check]:
    """The database answers, and its schema revision is the one this code expects."""
    try:
        with _probe_engine(url).connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError as exc:
        if _missing_version_table(exc):
            return [Check("database", "ok"), Check("migrations", "none", "database not migrated")]
        log.warning("readiness: database check failed: %s", exc)
        return [
            Check("database", "unreachable", f"database unreachable ({type(exc).__name__})"),
            Check("migrations", "unknown"),
        ]
    expected = set(head_revisions())
    revision = ",".join(sorted(current)) or "none"
    if current != expected:
        wanted = ",".join(sorted(expected))
        problem = f"migrations not current (database at {revision}, code expects {wanted})"
        return [Check("database", "ok"), Check("migrations", revision, problem)]
    return [Check("database", "ok"), Check("migrations", revision)]


def _missing_version_table(exc: SQLAlchemyError) -> bool:
    message = str(exc).lower()
    return "alembic_version" in message and ("no such table" in message or "does not" in message)


def check_queue(url: str) -> list[Check]:
    """The queue answers (and its tables exist)."""
    try:
        depth = queue_depth(url)
    except Exception as exc:  # noqa: BLE001 - sqlite3, psycopg and redis each raise their own
        log.warning("readiness: queue check failed: %s", exc)
        return [Check("queue", "unreachable", f"queue unreachable ({type(exc).__name__})")]
    return [Check("queue", f"ok ({sum(depth.values())} waiting)")]


def run_checks() -> list[Check]:
    """Every readiness check, run concurrently."""
    settings = get_settings()
    database = _pool.submit(check_database, settings.resolved_database_url)
    queue = _pool.submit(check_queue, settings.resolved_queue_url)
    return database.result() + queue.result()


@router.get("/ready", response_model=None)
def ready() -> dict[str, str] | JSONResponse:
    """200 when the database, its migrations and the queue are fine; 503 with the reasons."""
    checks = run_checks()
    problems = [c.problem for c in checks if c.problem]
    if problems:
        return error_response(503, "Not ready: " + "; ".join(problems) + ".", "NOT_READY")
    return {"status": "ready", **{c.name: c.detail for c in checks}}
