"""request tallies kept by triggers; indexes for the status pages

Revision ID: 0002_request_tally
Revises: 0001_initial
Create Date: 2026-11-27 07:50:00

The console and ``GET /api/v1/requests`` show per-channel counts of every listed request;
counting a 100,000-recipient request's ledger rows costs tens of milliseconds per view, so
the counts are kept up to date by triggers (SQLite: in ``request_tally`` directly, one
writer at a time anyway; PostgreSQL: appended to ``request_tally_delta`` per statement, so
concurrent workers never queue on a counter row, and folded in by readers and the sweeper).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_request_tally"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_ADD = (
    "INSERT INTO request_tally (request_id, channel, state, n) VALUES ({r}, {c}, {s}, {n}) "
    "ON CONFLICT (request_id, channel, state) DO UPDATE SET n = n + excluded.n;"
)

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER tally_delivery_insert AFTER INSERT ON delivery BEGIN "
    + _SQLITE_ADD.format(r="NEW.request_id", c="NEW.channel", s="NEW.state", n=1)
    + " END",
    "CREATE TRIGGER tally_delivery_update AFTER UPDATE OF state ON delivery "
    "WHEN OLD.state IS NOT NEW.state BEGIN "
    + _SQLITE_ADD.format(r="OLD.request_id", c="OLD.channel", s="OLD.state", n=-1)
    + _SQLITE_ADD.format(r="NEW.request_id", c="NEW.channel", s="NEW.state", n=1)
    + " END",
    "CREATE TRIGGER tally_delivery_delete AFTER DELETE ON delivery BEGIN "
    + _SQLITE_ADD.format(r="OLD.request_id", c="OLD.channel", s="OLD.state", n=-1)
    + " END",
    "CREATE TRIGGER tally_holder_insert AFTER INSERT ON pass_holder BEGIN "
    + _SQLITE_ADD.format(r="NEW.request_id", c="'*'", s="'recipients'", n=1)
    + _SQLITE_ADD.format(
        r="NEW.request_id",
        c="'*'",
        s="'opened'",
        n="(CASE WHEN NEW.opened_count > 0 THEN 1 ELSE 0 END)",
    )
    + " END",
    "CREATE TRIGGER tally_holder_update AFTER UPDATE OF opened_count ON pass_holder "
    "WHEN (OLD.opened_count > 0) != (NEW.opened_count > 0) BEGIN "
    + _SQLITE_ADD.format(
        r="NEW.request_id",
        c="'*'",
        s="'opened'",
        n="(CASE WHEN NEW.opened_count > 0 THEN 1 ELSE -1 END)",
    )
    + " END",
    "CREATE TRIGGER tally_holder_delete AFTER DELETE ON pass_holder BEGIN "
    + _SQLITE_ADD.format(r="OLD.request_id", c="'*'", s="'recipients'", n=-1)
    + _SQLITE_ADD.format(
        r="OLD.request_id",
        c="'*'",
        s="'opened'",
        n="(CASE WHEN OLD.opened_count > 0 THEN -1 ELSE 0 END)",
    )
    + " END",
]

# PostgreSQL: statement-level triggers with transition tables, one aggregated insert each.
_PG_DELIVERY_ROWS = {
    "INSERT": "SELECT request_id, channel, state, 1 AS n FROM new_rows",
    "DELETE": "SELECT request_id, channel, state, -1 AS n FROM old_rows",
    "UPDATE": "SELECT request_id, channel, state, -1 AS n FROM old_rows "
    "UNION ALL SELECT request_id, channel, state, 1 AS n FROM new_rows",
}
_PG_HOLDER_ROWS = {
    "INSERT": "SELECT request_id, '*' AS channel, 'recipients' AS state, 1 AS n FROM new_rows "
    "UNION ALL SELECT request_id, '*', 'opened', 1 FROM new_rows WHERE opened_count > 0",
    "DELETE": "SELECT request_id, '*' AS channel, 'recipients' AS state, -1 AS n FROM old_rows "
    "UNION ALL SELECT request_id, '*', 'opened', -1 FROM old_rows WHERE opened_count > 0",
    "UPDATE": "SELECT request_id, '*' AS channel, 'opened' AS state, -1 AS n FROM old_rows "
    "WHERE opened_count > 0 UNION ALL SELECT request_id, '*', 'opened', 1 FROM new_rows "
    "WHERE opened_count > 0",
}
_PG_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def _pg_statements() -> list[str]:
    statements = []
    for table, rows in (("delivery", _PG_DELIVERY_ROWS), ("pass_holder", _PG_HOLDER_ROWS)):
        for event, select in rows.items():
            name = f"tally_{table}_{event.lower()}"
            statements.append(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "INSERT INTO request_tally_delta (request_id, channel, state, n) "
                f"SELECT request_id, channel, state, sum(n) FROM ({select}) AS t "
                "GROUP BY request_id, channel, state HAVING sum(n) <> 0; "
                "RETURN NULL; END $$"
            )
            statements.append(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} {_PG_REFERENCING[event]} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    return statements


_BACKFILL = [
    "INSERT INTO request_tally (request_id, channel, state, n) "
    "SELECT request_id, channel, state, count(*) FROM delivery "
    "GROUP BY request_id, channel, state",
    "INSERT INTO request_tally (request_id, channel, state, n) "
    "SELECT request_id, '*', 'recipients', count(*) FROM pass_holder GROUP BY request_id",
    "INSERT INTO request_tally (request_id, channel, state, n) "
    "SELECT request_id, '*', 'opened', count(*) FROM pass_holder WHERE opened_count > 0 "
    "GROUP BY request_id",
]


def upgrade() -> None:
    op.create_table(
        "request_tally",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "channel", "state", name=op.f("pk_request_tally")),
    )
    op.create_table(
        "request_tally_delta",
        sa.Column("id", _ID, nullable=False),
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_tally_delta")),
    )
    op.create_index("ix_delivery_request_submitted", "delivery", ["request_id", "submitted_at"])
    op.create_index("ix_delivery_request_lease", "delivery", ["request_id", "lease_until"])
    for statement in _BACKFILL:
        op.execute(statement)
    if op.get_bind().dialect.name == "postgresql":
        for statement in _pg_statements():
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("delivery", "pass_holder"):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER tally_{table}_{event} ON {table}")
                op.execute(f"DROP FUNCTION tally_{table}_{event}()")
    else:
        for table in ("delivery", "holder"):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER tally_{table}_{event}")
    op.drop_index("ix_delivery_request_lease", table_name="delivery")
    op.drop_index("ix_delivery_request_submitted", table_name="delivery")
    op.drop_table("request_tally_delta")
    op.drop_table("request_tally")
