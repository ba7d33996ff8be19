"""A database at an older schema revision, for migration tests.

A migration test asks for ``database_at`` (SQLite and PostgreSQL), builds a database at the
revision before its migration, fills it with plain SQL (the ORM models describe the newest
schema, not the old one), upgrades, and checks the rows::

    def test_0002_keeps_operators(database_at: DatabaseAt) -> None:
        db = database_at("0001_initial")
        db.execute("INSERT INTO operator (username, ...) VALUES (:u, ...)", {"u": "ops"})
        db.upgrade()  # to head
        assert db.execute("SELECT username FROM operator") == [("ops",)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from passpost.db import get_engine, migrate


@dataclass
class MigrationDatabase:
    """An empty database brought to one revision; ``upgrade`` moves it on."""

    url: str

    def execute(
        self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; return its rows as tuples (if any)."""
        with get_engine(self.url).begin() as connection:
            result = connection.execute(text(sql), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []

    def upgrade(self, revision: str = "head") -> None:
        """Run the migrations up to ``revision``."""
        migrate(self.url, revision)


DatabaseAt = Callable[[str], MigrationDatabase]
