"""What the domain CLIs share: a migrated database session with clean error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy.orm import Session

from passpost.config import get_settings
from passpost.db import migrate, session_scope
from passpost.errors import PasspostError


@contextmanager
def cli_session(*, write: bool = True) -> Iterator[Session]:
    """A migrated database and one transaction; service errors become a clean exit 1.

    ``write=False`` for commands that only read: they do not wait for SQLite's write lock.
    """
    url = get_settings().resolved_database_url
    migrate(url)
    try:
        with session_scope(url, write=write) as session:
            yield session
    except PasspostError as exc:
        typer.echo(f"error: {exc.message} ({exc.error_code})", err=True)
        raise typer.Exit(1) from exc
