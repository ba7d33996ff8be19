"""0007: personal passes. Existing passes stay shared passes, holders keep their links."""

from __future__ import annotations

from tests.support.migrations import DatabaseAt

NOW = "2026-11-27 07:00:00+00:00"


def test_existing_passes_and_holders_survive(database_at: DatabaseAt) -> None:
    db = database_at("0006_conformance")
    db.execute(
        "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier,"
        " updatable, voided, created_at, updated_at)"
        " VALUES (1, 'pass.t', 'S-1', 'TEAM', :f, :f, :now, :now)",
        {"f": False, "now": NOW},
    )
    db.execute(
        "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, size,"
        " created_at) VALUES (2, 1, 1, :content, '{}', 'ab', 3, :now)",
        {"content": b"zip", "now": NOW},
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
    assert db.execute("SELECT kind, template_pass_id FROM wallet_pass") == [("pass", None)]
    assert db.execute(
        "SELECT link_hash, serial_number, personal_values, personal_pass_id FROM pass_holder"
    ) == [("hash", None, None, None)]
    db.execute(
        "INSERT INTO passkit_install_event (pass_id, device_library_identifier, kind, at)"
        " VALUES (1, 'dev', 'install', :now)",
        {"now": NOW},
    )
    assert db.execute("SELECT pass_id, kind FROM passkit_install_event") == [(1, "install")]
    assert db.execute("SELECT count(*) FROM pass_change_job") == [(0,)]


def test_0008_adds_template_tables_keeping_rows(database_at: DatabaseAt) -> None:
    db = database_at("0007_personal_passes")
    db.execute(
        "INSERT INTO operator (username, password_hash, created_at, active)"
        " VALUES ('ops', 'x', :now, :t)",
        {"now": NOW, "t": True},
    )
    db.upgrade()
    assert db.execute("SELECT username FROM operator") == [("ops",)]
    db.execute(
        "INSERT INTO pass_template (id, name, payload, created_at, updated_at)"
        " VALUES (1, 'a', '{}', :now, :now)",
        {"now": NOW},
    )
    assert db.execute("SELECT name FROM pass_template") == [("a",)]
