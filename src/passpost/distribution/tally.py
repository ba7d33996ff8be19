"""Counts per request, channel and state, read from ``request_tally`` (kept by triggers).

See the migration ``0002_request_tally``: SQLite's triggers update the tally in place;
PostgreSQL's append deltas, which the sweeper's ``fold`` moves into the tally; readers add
the deltas not folded yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session

from passpost.distribution.models import RequestTally, RequestTallyDelta

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
    folded = select(
        RequestTally.request_id, RequestTally.channel, RequestTally.state, RequestTally.n
    ).where(RequestTally.request_id.in_(ids))
    # Deltas not folded yet (PostgreSQL; a few seconds' worth): read, not folded, so that
    # a page view never writes. ix_request_tally_delta_request keeps this a range read.
    pending = select(
        RequestTallyDelta.request_id,
        RequestTallyDelta.channel,
        RequestTallyDelta.state,
        RequestTallyDelta.n,
    ).where(RequestTallyDelta.request_id.in_(ids))
    both = union_all(folded, pending).subquery()
    rows = session.execute(
        select(both.c.request_id, both.c.channel, both.c.state, func.sum(both.c.n))
        .group_by(both.c.request_id, both.c.channel, both.c.state)
        .having(func.sum(both.c.n) != 0)
    )
    for request_id, channel, state, n in rows:
        result[request_id].setdefault(channel, {})[state] = int(n)
    return result
