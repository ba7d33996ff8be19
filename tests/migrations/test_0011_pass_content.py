"""0011: pass bytes move to pass_content, once per SHA-256; versions and what points at them
stay."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from passpost.db import session_scope
from passpost.passes.models import PassVersion
from tests.support.migrations import DatabaseAt

NOW = "2026-11-27 07:00:00+00:00"
SAME, OTHER = b"PK same bytes", b"PK other bytes"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_versions_keep_their_bytes_stored_once(database_at: DatabaseAt) -> None:
    db = database_at("0010_install_tally")
    db.execute(
        "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier,"
        " updatable, voided, created_at, updated_at)"
        " VALUES (1, 'pass.t', 'S-1', 'TEAM', :f, :f, :now, :now)",
        {"f": False, "now": NOW},
    )
    # Two versions of the same bytes (one with a digest that does not match), one other.
    for version_id, number, data, digest in (
        (10, 1, SAME, _sha(SAME)),
        (11, 2, SAME, "not-the-digest"),
        (12, 3, OTHER, _sha(OTHER)),
    ):
        db.execute(
            "INSERT INTO pass_version (id, pass_id, version, content, pass_json, sha256, size,"
            " created_at) VALUES (:id, 1, :n, :content, '{}', :sha, 1, :now)",
            {"id": version_id, "n": number, "content": data, "sha": digest, "now": NOW},
        )
        db.execute(
            "INSERT INTO passkit_pass_update (pass_id, version_id, pass_type_identifier, seq,"
            " last_modified, created_at) VALUES (1, :id, 'pass.t', :n, :now, :now)",
            {"id": version_id, "n": number, "now": NOW},
        )
    db.execute(
        "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, priority,"
        " integration_config, created_at) VALUES (3, 1, 12, 'issue', :f, '{}', :now)",
        {"f": False, "now": NOW},
    )

    db.upgrade()

    assert sorted(db.execute("SELECT sha256, content, size FROM pass_content")) == sorted(
        [(_sha(SAME), SAME, len(SAME)), (_sha(OTHER), OTHER, len(OTHER))]
    )
    assert db.execute("SELECT id, sha256, size FROM pass_version ORDER BY id") == [
        (10, _sha(SAME), 1),
        (11, _sha(SAME), len(SAME)),  # the digest was recomputed
        (12, _sha(OTHER), 1),
    ]
    # Nothing that points at a version went away with the column.
    assert db.execute("SELECT version_id FROM passkit_pass_update ORDER BY seq") == [
        (10,),
        (11,),
        (12,),
    ]
    assert db.execute("SELECT pass_version_id FROM distribution_request") == [(12,)]
    with session_scope(db.url) as session:
        contents = session.execute(select(PassVersion.id, PassVersion.content)).all()
        assert sorted(contents) == [(10, SAME), (11, SAME), (12, OTHER)]
        # A new version of bytes already stored adds no second copy.
        session.add(PassVersion(pass_id=1, version=4, content=OTHER, pass_json="{}"))
    assert db.execute("SELECT count(*) FROM pass_content") == [(2,)]
    assert db.execute("SELECT sha256, size FROM pass_version WHERE version = 4") == [
        (_sha(OTHER), len(OTHER))
    ]
