"""Counts per request, channel and state, read from ``request_tally`` (kept by triggers).

See the migration ``0002_request_tally``: SQLite's triggers update the tally in place;
PostgreSQL's append deltas, which the sweeper's ``fold`` moves into the tally; readers add
the deltas not folded yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

# The pseudo-channel of the per-recipient counts ("recipients", "opened").
RECIPIENTS = "*"

_FOLD = text(
    "WITH moved AS (DELETE FROM request_tally_delta WHERE id IN "
    "(SELECT id FROM request_tally_delta ORDER BY id FOR UPDATE SKIP LOCKED) "
    "RETURNING request_id, channel, state, n) "
    "INSERT INTO request_tally (request_id, channel, state, n) "
    "SELECT request_id, channel, state, sum(n) FROM moved "
    "GROUP BY request_id, channel, state ORDER BY request_id, channel, state "
    "ON CONFLICT (request_id, channel, state) DO UPDATE SET n = request_tally.n + excluded.n"
)


def fold(session: Session) -> None:
    """Move PostgreSQL's pending deltas into the tally (a no-op on SQLite).

    Concurrent folds take disjoint deltas (SKIP LOCKED) and update tally rows in key order,
    so they neither double-count nor deadlock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_FOLD)


Counts = dict[str, dict[str, int]]

# SQLite's triggers write the tally itself (there are never deltas): one index range.
_COUNTS_SQLITE = text(
    "SELECT request_id, channel, state, n FROM request_tally WHERE request_id IN :ids AND n != 0"
).bindparams(bindparam("ids", expanding=True))

_COUNTS = text(
    "SELECT request_id, channel, state, sum(n) FROM ("
    "SELECT request_id, channel, state, n FROM request_tally WHERE request_id IN :ids "
    "UNION ALL "
    "SELECT request_id, channel, state, n FROM request_tally_delta WHERE request_id IN :ids"
    ") AS t GROUP BY request_id, channel, state HAVING sum(n) != 0"
).bindparams(bindparam("ids", expanding=True))


def counts(session: Session, request_ids: Iterable[int]) -> dict[int, Counts]:
    """``{request_id: {channel: {state: n}}}`` for each request (zero counts left out)."""
    ids = list(request_ids)
    result: dict[int, Counts] = {request_id: {} for request_id in ids}
    if not ids:
        return result
    # Deltas not folded yet (PostgreSQL; a few seconds' worth) are read, not folded, so a
    # page view never writes; ix_request_tally_delta_request keeps that a range read.
    # Plain SQL: building this union with the expression language cost ~10 ms a call.
    sqlite = session.get_bind().dialect.name == "sqlite"
    rows = session.execute(_COUNTS_SQLITE if sqlite else _COUNTS, {"ids": ids})
    for request_id, channel, state, n in rows:
        result[request_id].setdefault(channel, {})[state] = int(n)
    return result
