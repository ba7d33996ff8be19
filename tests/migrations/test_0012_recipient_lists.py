"""0012: large requests' recipient lists. Existing requests keep their rows and need none."""

from __future__ import annotations

from tests.support.migrations import DatabaseAt

NOW = "2026-11-27 07:00:00+00:00"


def test_existing_requests_survive_and_lists_can_be_stored(database_at: DatabaseAt) -> None:
    db = database_at("0011_pass_content")
    db.execute(
        "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier,"
        " updatable, voided, created_at, updated_at)"
        " VALUES (1, 'pass.t', 'S-1', 'TEAM', :f, :f, :now, :now)",
        {"f": False, "now": NOW},
    )
    db.execute(
        "INSERT INTO pass_content (sha256, content, size, created_at)"
        " VALUES ('ab', :content, 3, :now)",
        {"content": b"zip", "now": NOW},
    )
    db.execute(
        "INSERT INTO pass_version (id, pass_id, version, pass_json, sha256, size,"
        " created_at) VALUES (2, 1, 1, '{}', 'ab', 3, :now)",
        {"now": NOW},
    )
    db.execute(
        "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, priority,"
        " integration_config, created_at) VALUES (3, 1, 2, 'issue', :f, '{}', :now)",
        {"f": False, "now": NOW},
    )
    db.execute(
        "INSERT INTO pass_holder (id, request_id, pass_id, audience_id, notification,"
        " link_hash, link_token_enc, opened_count, created_at)"
        " VALUES (4, 3, 1, '7', 'issue', 'hash', 'enc', 0, :now)",
        {"now": NOW},
    )
    db.upgrade()
    assert db.execute("SELECT id, kind FROM distribution_request") == [(3, "issue")]
    assert db.execute("SELECT id, link_hash FROM pass_holder") == [(4, "hash")]
    assert db.execute("SELECT count(*) FROM request_expansion") == [(0,)]
    db.execute(
        "INSERT INTO request_expansion (request_id, pass_id, total, expanded, contacts,"
        " created_at, updated_at) VALUES (3, 1, 2000, 0, 0, :now, :now)",
        {"now": NOW},
    )
    db.execute(
        "INSERT INTO recipient_chunk (request_id, seq, first_index, size, entries)"
        " VALUES (3, 0, 0, 1000, :entries)",
        {"entries": b"x"},
    )
    assert db.execute("SELECT request_id, seq, size FROM recipient_chunk") == [(3, 0, 1000)]
