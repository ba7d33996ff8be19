"""installs and removals of personal passes counted per request in request_tally

Revision ID: 0010_install_tally
Revises: 0009_tally_delta_index
Create Date: 2026-11-27 11:00:00

``GET /api/v1/requests/{id}`` and the console's Request page show a request's installs and
removals (SPEC §13). For a request of personal passes that meant counting the install
events of every built pass of the request (100,000 passes: 200 statements, ~0.7 s per
view). Triggers on ``passkit_install_event`` now keep the counts in ``request_tally``
under the recipients' pseudo-channel ``*`` (states ``installs`` and ``removals``), as 0002
does for deliveries: SQLite in place, PostgreSQL as deltas per statement. A shared pass's
events stay counted from the index (one range, covered by the new (pass_id, kind) index):
the pass is not any one request's.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_install_tally"
down_revision: str | None = "0009_tally_delta_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATE = "CASE {e}.kind WHEN 'install' THEN 'installs' ELSE 'removals' END"
_KINDS = "{e}.kind IN ('install', 'removal')"

_SQLITE_ADD = (
    "INSERT INTO request_tally (request_id, channel, state, n) "
    f"SELECT request_id, '*', {_STATE.format(e='{row}')}, {{n}} FROM pass_holder "
    f"WHERE personal_pass_id = {{row}}.pass_id AND {_KINDS.format(e='{row}')} "
    "ON CONFLICT (request_id, channel, state) DO UPDATE SET n = n + excluded.n;"
)
_SQLITE_TRIGGERS = [
    "CREATE TRIGGER tally_install_insert AFTER INSERT ON passkit_install_event BEGIN "
    + _SQLITE_ADD.format(row="NEW", n=1)
    + " END",
    "CREATE TRIGGER tally_install_delete AFTER DELETE ON passkit_install_event BEGIN "
    + _SQLITE_ADD.format(row="OLD", n=-1)
    + " END",
]


def _pg_statements() -> list[str]:
    statements = []
    for event, rows, sign in (("INSERT", "new_rows", ""), ("DELETE", "old_rows", "-")):
        name = f"tally_install_{event.lower()}"
        statements.append(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO request_tally_delta (request_id, channel, state, n) "
            f"SELECT h.request_id, '*', {_STATE.format(e='e')}, {sign}count(*) "
            f"FROM {rows} e JOIN pass_holder h ON h.personal_pass_id = e.pass_id "
            f"WHERE {_KINDS.format(e='e')} GROUP BY h.request_id, e.kind; "
            "RETURN NULL; END $$"
        )
        referencing = "NEW" if event == "INSERT" else "OLD"
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event} ON passkit_install_event "
            f"REFERENCING {referencing} TABLE AS {rows} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    return statements


_BACKFILL = (
    "INSERT INTO request_tally (request_id, channel, state, n) "
    f"SELECT h.request_id, '*', {_STATE.format(e='e')}, count(*) "
    "FROM passkit_install_event e JOIN pass_holder h ON h.personal_pass_id = e.pass_id "
    f"WHERE {_KINDS.format(e='e')} GROUP BY h.request_id, e.kind"
)


def upgrade() -> None:
    op.create_index(
        "ix_passkit_install_event_pass_kind", "passkit_install_event", ["pass_id", "kind"]
    )
    op.execute(_BACKFILL)
    if op.get_bind().dialect.name == "postgresql":
        for statement in _pg_statements():
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    for event in ("insert", "delete"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER tally_install_{event} ON passkit_install_event")
            op.execute(f"DROP FUNCTION tally_install_{event}()")
        else:
            op.execute(f"DROP TRIGGER tally_install_{event}")
    for table in ("request_tally", "request_tally_delta"):
        op.execute(f"DELETE FROM {table} WHERE channel = '*' AND state IN ('installs', 'removals')")
    op.drop_index("ix_passkit_install_event_pass_kind", table_name="passkit_install_event")
