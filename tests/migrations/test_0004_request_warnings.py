"""0004: requests gain validation_warnings; existing requests keep every field and have none."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from passpost.db import get_engine
from passpost.distribution import status
from tests.support.migrations import DatabaseAt

NOW = datetime(2026, 11, 1, tzinfo=UTC).isoformat()


def test_upgrade_keeps_requests_without_warnings(database_at: DatabaseAt) -> None:
    db = database_at("0003_holder_page_index")
    db.execute(
        "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier, "
        "updatable, voided, created_at, updated_at) "
        "VALUES (1, 'pass.t', 'S1', 'TEAM', false, false, :now, :now)",
        {"now": NOW},
    )
    db.execute(
        "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, size, "
        "created_at) VALUES (1, 1, 1, :c, '{}', 'x', 1, :now)",
        {"c": b"x", "now": NOW},
    )
    db.execute(
        "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, priority, "
        "integration_config, created_by, created_at) "
        "VALUES (10, 1, 1, 'update', true, '{\"a\": 1}', 'ops', :now)",
        {"now": NOW},
    )
    db.upgrade()
    rows = db.execute(
        "SELECT id, pass_id, kind, priority, integration_config, created_by, validation_warnings "
        "FROM distribution_request"
    )
    assert rows == [(10, 1, "update", True, '{"a": 1}', "ops", None)]
    db.execute('UPDATE distribution_request SET validation_warnings = \'[{"errorCode": "W"}]\'')
    with Session(get_engine(db.url)) as session:
        details = status.request_progress(session, 10)
    assert details["requestId"] == "10" and details["kind"] == "update"
    assert details["warnings"] == [{"errorCode": "W"}]
