"""The migrations: head matches the models, and upgrading keeps the rows already there."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import passpost.models  # noqa: F401  (registers every table on Base.metadata)
from passpost.db import Base, get_engine
from tests.support.migrations import DatabaseAt


def test_head_matches_the_models(database_at: DatabaseAt) -> None:
    """A model changed without a migration shows up here as a difference."""
    db = database_at("head")
    with get_engine(db.url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_to_head_keeps_rows(database_at: DatabaseAt) -> None:
    db = database_at("0001_initial")
    db.execute(
        "INSERT INTO operator (username, password_hash, created_at, active)"
        " VALUES (:username, 'x', CURRENT_TIMESTAMP, :active)",
        {"username": "ops", "active": True},
    )
    db.upgrade()
    assert db.execute("SELECT username FROM operator") == [("ops",)]
