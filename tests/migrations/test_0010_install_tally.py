"""0010: installs and removals of personal passes are backfilled into the request tally,
then kept by triggers; a shared pass's events are left to the index."""

from __future__ import annotations

from sqlalchemy.orm import Session

from passpost.db import get_engine
from passpost.distribution import tally
from tests.support.migrations import DatabaseAt, MigrationDatabase

NOW = "2026-11-27 07:00:00+00:00"


def _pass(db: MigrationDatabase, pass_id: int, kind: str, template: int | None = None) -> None:
    db.execute(
        "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier,"
        " updatable, voided, kind, template_pass_id, created_at, updated_at)"
        " VALUES (:id, 'pass.t', :serial, 'TEAM', :f, :f, :kind, :template, :now, :now)",
        {
            "id": pass_id,
            "serial": f"S-{pass_id}",
            "f": False,
            "kind": kind,
            "template": template,
            "now": NOW,
        },
    )


def _event(db: MigrationDatabase, pass_id: int, device: str, kind: str) -> None:
    db.execute(
        "INSERT INTO passkit_install_event (pass_id, device_library_identifier, kind, at)"
        " VALUES (:p, :d, :k, :now)",
        {"p": pass_id, "d": device, "k": kind, "now": NOW},
    )


def _fill_at_0009(db: MigrationDatabase) -> None:
    _pass(db, 1, "template")
    _pass(db, 2, "pass")
    for personal in (11, 12, 13):
        _pass(db, personal, "personal", template=1)
    db.execute(
        "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, size,"
        " created_at) VALUES (5, 1, 1, :content, '{}', 'ab', 3, :now)",
        {"content": b"zip", "now": NOW},
    )
    for request_id, pass_id in ((100, 1), (200, 2)):
        db.execute(
            "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, priority,"
            " integration_config, created_at) VALUES (:id, :p, 5, 'issue', :f, '{}', :now)",
            {"id": request_id, "p": pass_id, "f": False, "now": NOW},
        )
    holders = [(21, 100, 1, 11), (22, 100, 1, 12), (23, 100, 1, None), (24, 200, 2, None)]
    for holder_id, request_id, pass_id, personal in holders:
        db.execute(
            "INSERT INTO pass_holder (id, request_id, pass_id, audience_id, notification,"
            " link_hash, link_token_enc, opened_count, created_at, personal_pass_id)"
            " VALUES (:id, :r, :p, :aud, 'issue', :h, 'enc', 0, :now, :own)",
            {
                "id": holder_id,
                "r": request_id,
                "p": pass_id,
                "aud": str(holder_id),
                "h": f"h{holder_id}",
                "now": NOW,
                "own": personal,
            },
        )
    _event(db, 11, "d1", "install")
    _event(db, 11, "d2", "install")
    _event(db, 11, "d2", "removal")
    _event(db, 12, "d3", "install")
    _event(db, 13, "d4", "install")  # a personal pass no holder holds: no request's
    _event(db, 2, "d5", "install")  # the shared pass: counted from its events


def _installs(db: MigrationDatabase, request_id: int) -> tuple[int, int]:
    with Session(get_engine(db.url)) as session:
        tallied = tally.counts(session, [request_id])[request_id].get(tally.RECIPIENTS, {})
    return tallied.get("installs", 0), tallied.get("removals", 0)


def test_backfill_then_triggers_keep_counting(database_at: DatabaseAt) -> None:
    db = database_at("0009_tally_delta_index")
    _fill_at_0009(db)
    db.upgrade()
    assert _installs(db, 100) == (3, 1)
    assert _installs(db, 200) == (0, 0)
    _event(db, 12, "d3", "removal")
    _event(db, 12, "d6", "install")
    _event(db, 2, "d5", "removal")
    assert _installs(db, 100) == (4, 2)
    db.execute("DELETE FROM passkit_install_event WHERE pass_id = 11")
    assert _installs(db, 100) == (2, 1)
    assert _installs(db, 200) == (0, 0)
    with Session(get_engine(db.url)) as session:
        tally.fold(session)
        session.commit()
    assert _installs(db, 100) == (2, 1)
    index = db.execute(
        "SELECT count(*) FROM passkit_install_event WHERE pass_id = 2 AND kind = 'install'"
    )
    assert index == [(1,)]
