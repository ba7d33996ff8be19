"""Request dependencies: settings and the one transaction per HTTP request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from passpost.config import Settings, get_settings
from passpost.db import session_scope


def _settings() -> Settings:
    return get_settings()


def _db_session(
    request: Request, settings: Annotated[Settings, Depends(_settings)]
) -> Iterator[Session]:
    # Committed before the response is sent (scope="function"): a 200 means durable.
    # Requests that change things read, then write: they begin as writers.
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with session_scope(settings.resolved_database_url, write=write) as session:
        yield session


def _read_session(settings: Annotated[Settings, Depends(_settings)]) -> Iterator[Session]:
    with session_scope(settings.resolved_database_url) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[Session, Depends(_db_session, scope="function")]
# For routes that write in transactions of their own (the import calls): on SQLite a writer
# transaction held while the credentials are checked would queue every import behind the
# group committer's writer transaction.
ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
