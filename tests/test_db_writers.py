"""SQLite writers of one process queue on a gate, released however their transaction ends."""

from __future__ import annotations

import threading
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
    _increment(url)
    with session_scope(url) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 1


def test_a_writer_closed_without_commit_releases_the_gate(url: str) -> None:
    session = _session_factory(url)()
    begin_write(session)
    session.execute(text("UPDATE counter SET n = 99"))
    session.close()
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
