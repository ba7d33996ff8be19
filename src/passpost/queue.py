"""The work queue: huey on SQLite (default), PostgreSQL or Redis, chosen by ``PASSPOST_QUEUE_URL``.

The queue only carries work; the database ledger is the truth. Task functions register
here with ``@task`` when their module is imported, and are bound to a huey instance when
first used, so nothing is created at import time and tests can point the queue anywhere.
This module imports no task module: an enqueuer has imported the task it enqueues, and the
worker (``passpost.worker``) imports every task module before it consumes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from huey import Huey, PriorityRedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.storage import PostgresStorage

from passpost.config import get_settings
from passpost.locks import libpq_dsn, sqlite_path, startup_lock

F = TypeVar("F", bound=Callable[..., Any])

# Higher runs first. Priority requests overtake everything already queued.
PRIORITY_HIGH = 100
PRIORITY_NORMAL = 10
PRIORITY_BACKGROUND = 0

PRIORITY_NAMES = {
    PRIORITY_HIGH: "high",
    PRIORITY_NORMAL: "normal",
    PRIORITY_BACKGROUND: "background",
}

QUEUE_NAME = "passpost"

# Short: a readiness probe or a metrics scrape must not hang on a dead queue server.
PROBE_TIMEOUT_SECONDS = 1.0

_registry: dict[str, Callable[..., Any]] = {}
_binding = threading.Lock()


def task(fn: F) -> F:
    """Register ``fn`` as a queue task (by its module-qualified name)."""
    _registry[f"{fn.__module__}.{fn.__name__}"] = fn
    return fn


def make_huey(url: str) -> Huey:
    """Build a huey instance for a queue URL (no results are stored: the ledger is the truth)."""
    common: dict[str, Any] = {"results": False, "utc": True}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(path), timeout=30, **common)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return PriorityRedisHuey(QUEUE_NAME, url=url, **common)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        return Huey(QUEUE_NAME, storage_class=PostgresStorage, dsn=dsn, **common)
    raise ValueError(f"unsupported PASSPOST_QUEUE_URL scheme: {url.split(':', 1)[0]!r}")


@lru_cache(maxsize=4)
def _huey(url: str) -> tuple[Huey, dict[str, TaskWrapper]]:
    # SQL queues create their tables here: processes starting together take turns.
    with startup_lock(url):
        return make_huey(url), {}


def _bound(url: str) -> tuple[Huey, dict[str, TaskWrapper]]:
    """The huey instance for ``url`` with every task registered so far bound to it."""
    huey, wrappers = _huey(url)
    if len(wrappers) < len(_registry):
        with _binding:  # huey refuses a second registration of the same name
            for name, fn in list(_registry.items()):
                if name not in wrappers:
                    # huey prefixes the function's module itself: name=fn.__name__ stays short.
                    wrappers[name] = huey.task(name=fn.__name__)(fn)
    return huey, wrappers


def get_huey(url: str | None = None) -> Huey:
    """The huey instance for ``url`` (default: the configured queue), with every task bound."""
    return _bound(url or get_settings().resolved_queue_url)[0]


def enqueue(
    fn: Callable[..., Any],
    *args: Any,
    priority: int = PRIORITY_NORMAL,
    eta: datetime | None = None,
    url: str | None = None,
) -> None:
    """Put a call of a registered task on the queue (optionally not before ``eta``)."""
    huey, wrappers = _bound(url or get_settings().resolved_queue_url)
    wrapper = wrappers[f"{fn.__module__}.{fn.__name__}"]
    if eta is not None:
        wrapper.schedule(args=args, eta=eta, priority=priority)
        return
    call = wrapper.s(*args)
    call.priority = priority
    huey.enqueue(call)


def queue_depth(url: str) -> dict[str, int]:
    """Tasks waiting in the queue at ``url`` per priority name (``high``/``normal``/...).

    Opens its own short-lived connection with a timeout; raises when the queue is unreachable.
    """
    counts = {name: 0 for name in PRIORITY_NAMES.values()}
    for priority, count in _depth_by_priority(url):
        name = PRIORITY_NAMES.get(int(priority), str(int(priority)))
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def _depth_by_priority(url: str) -> list[tuple[float, int]]:
    path = sqlite_path(url)
    if path is not None:
        import sqlite3

        # mode=rw: a missing queue file is an error here, not silently created.
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            sql = "SELECT priority, count(*) FROM task WHERE queue = ? GROUP BY priority"
            return list(conn.execute(sql, (QUEUE_NAME,)))
        finally:
            conn.close()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _redis_depth(url)
    import psycopg

    timeout = max(1, round(PROBE_TIMEOUT_SECONDS))
    with psycopg.connect(libpq_dsn(url), connect_timeout=timeout) as pg:
        sql = "SELECT priority, count(*) FROM huey_task WHERE queue = %s GROUP BY priority"
        return [(row[0], row[1]) for row in pg.execute(sql, (QUEUE_NAME,))]


def _redis_depth(url: str) -> list[tuple[float, int]]:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        key = f"huey.redis.{QUEUE_NAME}"
        # PriorityRedisHuey scores a task with its negated priority.
        pipe = client.pipeline()
        for priority in PRIORITY_NAMES:
            pipe.zcount(key, -priority, -priority)
        pipe.zcard(key)
        *per_priority, total = pipe.execute()
        rows = [(float(p), int(n)) for p, n in zip(PRIORITY_NAMES, per_priority, strict=True)]
        other = int(total) - sum(n for _, n in rows)
        return rows + ([(-1.0, other)] if other else [])
    finally:
        client.close()
