"""0005: passes get their recipient count from the holders; registrations keep every field."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.migrations import DatabaseAt

NOW = datetime(2026, 11, 1, tzinfo=UTC).isoformat()


def test_upgrade_counts_recipients_and_keeps_registrations(database_at: DatabaseAt) -> None:
    db = database_at("0004_request_warnings")
    for pass_id in (1, 2):
        db.execute(
            "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier, "
            "updatable, voided, created_at, updated_at) "
            "VALUES (:id, 'pass.t', :serial, 'TEAM', true, false, :now, :now)",
            {"id": pass_id, "serial": f"S{pass_id}", "now": NOW},
        )
    db.execute(
        "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, size, "
        "created_at) VALUES (1, 1, 1, :c, '{}', 'x', 1, :now)",
        {"c": b"x", "now": NOW},
    )
    for request_id in (10, 11):
        db.execute(
            "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, priority, "
            "integration_config, created_at) VALUES (:id, 1, 1, 'issue', false, '{}', :now)",
            {"id": request_id, "now": NOW},
        )
    for recipient_id in (101, 102, 103):
        db.execute(
            "INSERT INTO recipient (id, email, sms_subscription, email_subscription, "
            "push_subscription, created_at, updated_at) "
            "VALUES (:id, :email, true, true, false, :now, :now)",
            {"id": recipient_id, "email": f"r{recipient_id}@example.com", "now": NOW},
        )
    # Recipients 101 and 102 in both requests (an update), 103 once, one unknown id.
    holders = [(10, 101), (10, 102), (11, 101), (11, 102), (11, 103), (11, None)]
    for n, (request_id, recipient_id) in enumerate(holders, start=1):
        db.execute(
            "INSERT INTO pass_holder (id, request_id, pass_id, recipient_id, audience_id, "
            "notification, link_hash, link_token_enc, opened_count, created_at) "
            "VALUES (:id, :r, 1, :rec, :aud, 'issue', :h, 'enc', 0, :now)",
            {
                "id": n,
                "r": request_id,
                "rec": recipient_id,
                "aud": str(n),
                "h": f"h{n}",
                "now": NOW,
            },
        )
    db.execute(
        "INSERT INTO passkit_registration (id, device_library_identifier, pass_id, push_token, "
        "created_at, updated_at) VALUES (7, 'dev-1', 1, 'tok-1', :now, :now)",
        {"now": NOW},
    )
    db.upgrade()
    counts = db.execute("SELECT id, recipient_count FROM wallet_pass ORDER BY id")
    assert counts == [(1, 3), (2, 0)]
    rows = db.execute(
        "SELECT id, device_library_identifier, pass_id, push_token, remote_addr "
        "FROM passkit_registration"
    )
    assert rows == [(7, "dev-1", 1, "tok-1", None)]
