"""The polled statements run on a SQLite connection's DBAPI cursor, skipping SQLAlchemy's
execution layer.

Measured on the latest-pass call: SQLAlchemy spends ~60 µs of CPU around a SELECT that
SQLite answers in ~8 (the execution context, the ``begin`` hook's own ``BEGIN``, cursor
events, the result object, the rollback). The statements are still SQLAlchemy's: each is
compiled once for the engine's dialect and its rows pass through the column types' own
result processors (``UTCDateTime`` included). Without the ``BEGIN`` each statement is its
own read snapshot, which is all these calls need: the latest pass's second statement reads
a version's bytes, which never change; serials-since is one statement.

``DirectReads`` offers the one method the polled functions call on a connection,
``execute(statement, parameters)``, and its result's ``first``/``scalar``/``all``. It is
only used when nobody observes the engine's statements (cursor events, ``echo``): with an
observer the reads go through SQLAlchemy so that it sees them as usual.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import Select


def observed(connection: Connection) -> bool:
    """True when something watches the statements run on ``connection``."""
    dispatch = connection.dispatch
    return bool(
        dispatch.before_cursor_execute or dispatch.after_cursor_execute or connection.engine.echo
    )


class _Compiled:
    """One select compiled for a dialect: SQL, parameter order, a row maker."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if dialect.paramstyle != "qmark" or compiled.positiontup is None:
            raise ValueError("DirectReads runs qmark (SQLite) statements only")
        self.sql = compiled.string
        self.names = list(compiled.positiontup)
        self.fixed = {name: bind.effective_value for name, bind in compiled.binds.items()}
        columns = list(statement.selected_columns)
        self.row: Any = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
        self.processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]

        self.plain = all(processor is None for processor in self.processors)
        # ``tuple.__new__`` through ``map``: no Python call per row, as ``_make`` makes.
        self._new_row = partial(tuple.__new__, self.row)

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        if self.plain:
            return list(map(self._new_row, raw))
        return [
            self.row(
                *(
                    value if processor is None or value is None else processor(value)
                    for value, processor in zip(values, self.processors, strict=True)
                )
            )
            for values in raw
        ]


class Rows:
    """The slice of a SQLAlchemy ``Result`` that the polled functions use."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows


class DirectReads:
    """Runs selects on a SQLite DBAPI connection (autocommit: one snapshot per statement)."""

    def __init__(self, dbapi_connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._dbapi = dbapi_connection
        self._dialect = dialect
        self._compiled: dict[int, tuple[Select[Any], _Compiled]] = {}

    def data_version(self) -> int:
        """SQLite's ``data_version``: it changes whenever another connection, of this process
        or any other, committed since this one last asked (this one only ever reads)."""
        version: int = self._dbapi.execute("PRAGMA data_version").fetchone()[0]
        return version

    def execute(self, statement: Select[Any], parameters: Mapping[str, Any]) -> Rows:
        """Rows of ``statement`` with ``parameters``, typed as SQLAlchemy would return them."""
        entry = self._compiled.get(id(statement))
        if entry is None or entry[0] is not statement:
            # Keyed by identity: the polled statements are built once, at import.
            entry = self._compiled[id(statement)] = (statement, _Compiled(statement, self._dialect))
        compiled = entry[1]
        values = [
            parameters[name] if name in parameters else compiled.fixed[name]
            for name in compiled.names
        ]
        return Rows(compiled.rows(self._dbapi.execute(compiled.sql, values).fetchall()))
