"""Queue depth per priority, as ``/metrics`` reports it, on every queue backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from passpost.distribution.tasks import dispatch_request
from passpost.locks import libpq_dsn
from passpost.queue import (
    PRIORITY_BACKGROUND,
    PRIORITY_HIGH,
    PRIORITY_NORMAL,
    enqueue,
    get_huey,
    queue_depth,
)
from tests.conftest import (
    create_pg_database,
    drop_pg_database,
    postgres_available,
    redis_database,
)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.db'}"
        return
    if request.param == "redis":
        with redis_database() as url:
            yield url
        return
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    database = create_pg_database()
    try:
        yield libpq_dsn(database)
    finally:
        get_huey(libpq_dsn(database)).storage.close()
        drop_pg_database(database)


def test_depth_per_priority(queue_url: str, settings_env: Path) -> None:
    get_huey(queue_url)
    assert queue_depth(queue_url) == {"high": 0, "normal": 0, "background": 0}
    for priority, count in ((PRIORITY_HIGH, 3), (PRIORITY_NORMAL, 2), (PRIORITY_BACKGROUND, 1)):
        for n in range(count):
            enqueue(dispatch_request, n, priority=priority, url=queue_url)
    assert queue_depth(queue_url) == {"high": 3, "normal": 2, "background": 1}
    assert get_huey(queue_url).dequeue() is not None  # the highest priority goes first
    assert queue_depth(queue_url)["high"] == 2
