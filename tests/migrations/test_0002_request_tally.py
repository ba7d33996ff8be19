"""0002: request tallies are backfilled from the ledger and then kept by triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from passpost.db import get_engine
from passpost.distribution import tally
from tests.support.migrations import DatabaseAt

NOW = datetime(2026, 11, 1, tzinfo=UTC).isoformat()


def _fill_at_0001(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, "
                "team_identifier, updatable, voided, created_at, updated_at) "
                "VALUES (1, 'pass.t', 'S1', 'TEAM', false, false, :now, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, "
                "size, created_at) VALUES (1, 1, 1, :c, '{}', 'x', 1, :now)"
            ),
            {"c": b"x", "now": NOW},
        )
        for request_id in (10, 11):
            conn.execute(
                text(
                    "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, "
                    "priority, integration_config, created_at) "
                    "VALUES (:id, 1, 1, 'issue', false, '{}', :now)"
                ),
                {"id": request_id, "now": NOW},
            )
        states = ["queued", "submitted", "submitted", "rejected", "opened"]
        for i, state in enumerate(states, start=1):
            conn.execute(
                text(
                    "INSERT INTO pass_holder (id, request_id, pass_id, audience_id, notification, "
                    "link_hash, link_token_enc, opened_count, created_at) "
                    "VALUES (:id, 10, 1, :aud, 'issue', :h, 'enc', :opened, :now)"
                ),
                {
                    "id": i,
                    "aud": str(i),
                    "h": f"h{i}",
                    "opened": int(state == "opened"),
                    "now": NOW,
                },
            )
            for channel in ("EMAIL", "SMS"):
                conn.execute(
                    text(
                        "INSERT INTO delivery (request_id, holder_id, channel, state, priority, "
                        "attempts, created_at, updated_at) "
                        "VALUES (10, :h, :ch, :st, false, 0, :now, :now)"
                    ),
                    {"h": i, "ch": channel, "st": state, "now": NOW},
                )


def test_upgrade_backfills_and_then_tracks_changes(database_at: DatabaseAt) -> None:
    db = database_at("0001_initial")
    engine = get_engine(db.url)
    _fill_at_0001(engine)
    db.upgrade()
    with Session(engine) as session:
        counts = tally.counts(session, [10, 11])
        session.commit()
    assert counts[11] == {}
    assert counts[10] == {
        "EMAIL": {"queued": 1, "submitted": 2, "rejected": 1, "opened": 1},
        "SMS": {"queued": 1, "submitted": 2, "rejected": 1, "opened": 1},
        "*": {"recipients": 5, "opened": 1},
    }
    with engine.begin() as conn:
        # A worker's outcome, a receipt, an open, a new row, a deleted row.
        conn.execute(text("UPDATE delivery SET state = 'submitted' WHERE state = 'queued'"))
        conn.execute(
            text(
                "UPDATE delivery SET state = 'delivered' WHERE state = 'submitted' "
                "AND channel = 'SMS'"
            )
        )
        conn.execute(text("UPDATE pass_holder SET opened_count = 2 WHERE id IN (1, 5)"))
        conn.execute(text("UPDATE delivery SET attempts = 3"))  # no state change
        conn.execute(text("DELETE FROM delivery WHERE state = 'rejected' AND channel = 'SMS'"))
    with Session(engine) as session:
        counts = tally.counts(session, [10])
        session.commit()
        ledger = {
            (ch, st): n
            for ch, st, n in session.execute(
                text("SELECT channel, state, count(*) FROM delivery GROUP BY channel, state")
            )
        }
    assert counts[10] == {
        "EMAIL": {"submitted": 3, "rejected": 1, "opened": 1},
        "SMS": {"delivered": 3, "opened": 1},
        "*": {"recipients": 5, "opened": 2},
    }
    assert {
        (ch, st): n for ch, states in counts[10].items() if ch != "*" for st, n in states.items()
    } == ledger


def test_0003_keeps_holders_and_pages_them(database_at: DatabaseAt) -> None:
    db = database_at("0002_request_tally")
    _fill_at_0001(get_engine(db.url))
    db.upgrade()
    with Session(get_engine(db.url)) as session:
        from passpost.distribution import status

        first = status.request_recipients(session, 10, after=0, limit=3)
        rest = status.request_recipients(session, 10, after=int(first[-1]["id"]), limit=3)
    assert [h["id"] for h in first + rest] == ["1", "2", "3", "4", "5"]
    assert [d["state"] for d in first[1]["channels"]] == ["submitted", "submitted"]


# SQLite's triggers write the tally in place: it never has deltas, and its readers read the
# tally alone (tally._COUNTS_SQLITE). So this one runs on PostgreSQL only.
@pytest.mark.parametrize(
    "database_at", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_0009_readers_add_the_deltas_not_folded(database_at: DatabaseAt) -> None:
    db = database_at("0008_pass_templates")
    assert db.url.startswith("postgresql")
    db.execute(
        "INSERT INTO request_tally (request_id, channel, state, n) VALUES (10, 'SMS', 'queued', 2)"
    )
    db.execute(
        "INSERT INTO request_tally_delta (request_id, channel, state, n) VALUES "
        "(10, 'SMS', 'queued', -1), (10, 'SMS', 'submitted', 1), (11, 'SMS', 'queued', 1)"
    )
    db.upgrade()
    with Session(get_engine(db.url)) as session:
        assert tally.counts(session, [10]) == {10: {"SMS": {"queued": 1, "submitted": 1}}}
        tally.fold(session)
        session.commit()
        assert tally.counts(session, [10, 11]) == {
            10: {"SMS": {"queued": 1, "submitted": 1}},
            11: {"SMS": {"queued": 1}},
        }
