"""The work queue: huey on SQLite (default), PostgreSQL or Redis, chosen by ``PASSPOST_QUEUE_URL``.

The queue only carries work; the database ledger is the truth. Task functions register
here with ``@task`` and are bound to a huey instance when one is built, so nothing is
created at import time and tests can point the queue anywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from huey import Huey, PriorityRedisHuey, SqliteHuey
from huey.api import TaskWrapper
from huey.storage import PostgresStorage

from passpost.config import get_settings

F = TypeVar("F", bound=Callable[..., Any])

# Modules whose import registers tasks (kept here so a worker always knows every task).
TASK_MODULES = ("passpost.distribution.tasks", "passpost.passkit.tasks")

# Higher runs first. Priority requests overtake everything already queued.
PRIORITY_HIGH = 100
PRIORITY_NORMAL = 10
PRIORITY_BACKGROUND = 0

_registry: dict[str, Callable[..., Any]] = {}


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
        return SqliteHuey("passpost", filename=str(path), timeout=30, **common)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return PriorityRedisHuey("passpost", url=url, **common)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        return Huey("passpost", storage_class=PostgresStorage, dsn=dsn, **common)
    raise ValueError(f"unsupported PASSPOST_QUEUE_URL scheme: {url.split(':', 1)[0]!r}")


@lru_cache(maxsize=4)
def _bound(url: str) -> tuple[Huey, dict[str, TaskWrapper]]:
    for module in TASK_MODULES:
        importlib.import_module(module)
    huey = make_huey(url)
    # huey prefixes the function's module itself: name=fn.__name__ keeps names readable.
    wrappers = {name: huey.task(name=fn.__name__)(fn) for name, fn in _registry.items()}
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
