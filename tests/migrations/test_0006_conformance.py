"""0006: recipients and certificates keep their rows; new columns get the original's defaults."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.migrations import DatabaseAt

NOW = datetime(2026, 11, 1, tzinfo=UTC).isoformat()


def test_0003_keeps_recipients_and_certificates(database_at: DatabaseAt) -> None:
    db = database_at("0005_registration_limits")
    db.execute(
        "INSERT INTO recipient (id, first_name, email, mobile_number, sms_subscription, "
        "email_subscription, push_subscription, created_at, updated_at) VALUES "
        "(7, 'Ada', 'ada@example.com', '+14155550100', true, false, true, :now, :now)",
        {"now": NOW},
    )
    db.execute(
        "INSERT INTO pass_certificate (id, name, pass_type_identifier, team_identifier, "
        "subject, issuer, serial_hex, sha256, not_before, not_after, certificate_pem, "
        "private_key_enc, passphrase_enc, extra_certificates_pem, created_by, created_at) "
        "VALUES (3, 'main', 'pass.t', 'TEAM', 's', 'i', '01', 'ab', :now, :now, 'pem', "
        "'k', 'p', '', 'ops', :now)",
        {"now": NOW},
    )
    db.upgrade()
    assert db.execute(
        "SELECT id, first_name, email, email_subscription, voice_subscription, last_active_at "
        "FROM recipient"
    ) == [(7, "Ada", "ada@example.com", False, True, None)]
    assert db.execute(
        "SELECT id, name, file_name, updated_by, updated_at FROM pass_certificate"
    ) == [(3, "main", None, None, None)]
    assert db.execute("SELECT count(*) FROM upload_batch") == [(0,)]
