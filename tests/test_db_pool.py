"""SQLite's connection pool keeps a connection per thread-pool thread: none is opened anew
(WAL pragma and all) for each request when many run at once."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import event, text

from passpost.db import make_engine


def test_busy_requests_reuse_their_sqlite_connections(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    opened: list[int] = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    for _ in range(3):  # three rounds of 32 requests at once, as under the import benchmark
        with ExitStack() as stack:
            for _ in range(32):
                stack.enter_context(engine.connect()).execute(text("SELECT 1"))
    assert len(opened) == 32
    engine.dispose()
