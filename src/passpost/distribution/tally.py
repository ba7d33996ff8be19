"""Counts per request, channel and state, read from ``request_tally`` (kept by triggers).

See the migration ``0002_request_tally``: SQLite's triggers update the tally in place;
PostgreSQL's append deltas, which ``fold`` moves into the tally before anything is read.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from passpost.distribution.models import RequestTally

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


def counts(session: Session, request_ids: Iterable[int]) -> dict[int, Counts]:
    """``{request_id: {channel: {state: n}}}`` for each request (zero counts left out)."""
    ids = list(request_ids)
    result: dict[int, Counts] = {request_id: {} for request_id in ids}
    if not ids:
        return result
    fold(session)
    rows = session.execute(
        select(
            RequestTally.request_id, RequestTally.channel, RequestTally.state, RequestTally.n
        ).where(RequestTally.request_id.in_(ids), RequestTally.n != 0)
    )
    for request_id, channel, state, n in rows:
        result[request_id].setdefault(channel, {})[state] = n
    return result
