"""One PostgreSQL database per test session, put back to its migrated state before each test.

``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` cost a quarter of a second to seconds
each (the copy goes through the WAL); emptying ~20 nearly empty tables with DELETE costs
milliseconds. The rows the template holds (the test operator) and every sequence's position
are recorded once and restored after each reset, so a test sees exactly the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

_KEEP = ("alembic_version",)


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class PgResetter:
    """Knows a migrated database's tables, seed rows and sequences; ``reset`` restores them."""

    url: str
    tables: list[str] = field(default_factory=list)
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = field(default_factory=dict)
    sequences: list[tuple[str, int, bool]] = field(default_factory=list)

    @classmethod
    def capture(cls, url: str) -> PgResetter:
        """Record the state to come back to (call right after migrating and seeding)."""
        resetter = cls(url)
        with psycopg.connect(_dsn(url), autocommit=True) as conn:
            resetter.tables = [
                name
                for (name,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
                if name not in _KEEP
            ]
            for table in resetter.tables:
                cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
                found = cursor.fetchall()
                if found:
                    columns = [column.name for column in cursor.description or ()]
                    resetter.rows[table] = (columns, found)
            for (name,) in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            ):
                last, called = conn.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(name))
                ).fetchone() or (1, False)
                resetter.sequences.append((name, int(last), bool(called)))
        return resetter

    def reset(self) -> None:
        """Close every other session of the database, empty it, restore rows and sequences."""
        with psycopg.connect(_dsn(self.url), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            with conn.transaction():
                # replica: no foreign-key checks and no triggers while emptying and refilling.
                conn.execute("SET LOCAL session_replication_role = replica")
                for table in self.tables:
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
                for table, (columns, rows) in self.rows.items():
                    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        sql.Identifier(table),
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                    )
                    conn.cursor().executemany(insert, rows)
                for name, last, called in self.sequences:
                    conn.execute("SELECT setval(%s, %s, %s)", (name, last, called))
