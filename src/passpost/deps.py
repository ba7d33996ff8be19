"""Request dependencies: settings and the one transaction per HTTP request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost.config import Settings, get_settings
from passpost.db import new_session, session_scope


async def _settings() -> Settings:
    # async: a sync dependency would cost every request a hop to the thread pool.
    return get_settings()


def _db_session(
    request: Request, settings: Annotated[Settings, Depends(_settings)]
) -> Iterator[Session]:
    # Committed before the response is sent (scope="function"): a 200 means durable.
    # Requests that change things read, then write: they begin as writers.
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with session_scope(settings.resolved_database_url, write=write) as session:
        yield session


async def _read_session(
    settings: Annotated[Settings, Depends(_settings)],
) -> AsyncIterator[Session]:
    # On the event loop: the routes that take it end its transaction in a thread of their
    # own (before reading the upload), so making and closing it here costs no thread hop.
    session = new_session(settings.resolved_database_url)
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[Session, Depends(_db_session, scope="function")]
# For routes that write in transactions of their own (the import calls): on SQLite a writer
# transaction held while the credentials are checked would queue every import behind the
# group committer's writer transaction.
ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
