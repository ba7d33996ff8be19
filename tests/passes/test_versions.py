"""A pass's versions, its update clock and its latest version with Last-Modified, directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passpost import pkpass
from passpost.db import session_scope
from passpost.errors import NotFound
from passpost.passes.clock import current_tag, record_update
from passpost.passes.latest import latest_by_identity, latest_version, version_content
from passpost.passes.models import PassUpdate, PassVersion, WalletPass
from passpost.passes.service import add_version, create_pass, locked_pass
from passpost.passes.signing import PreparedPass

PASS_TYPE = "pass.dev.passpost.test"
IDENTITY = pkpass.PassIdentity(PASS_TYPE, "S1", "TEAM123456", "generic", "Org", "A pass")


def _prepared(content: bytes, **pass_json: object) -> PreparedPass:
    return PreparedPass(content, {"serialNumber": "S1", **pass_json}, "t" * 43, True)


def _new_version(url: str, content: bytes, *, announce: bool = True, **pass_json: object) -> int:
    with session_scope(url, write=True) as session:
        wallet_pass = locked_pass(session, IDENTITY) or create_pass(session, IDENTITY)
        version = add_version(
            session,
            wallet_pass=wallet_pass,
            prepared=_prepared(content, **pass_json),
            now=wallet_pass.updated_at,
        )
        if announce:
            record_update(session, wallet_pass=wallet_pass, version=version)
        return version.id


def test_each_version_is_the_latest_with_a_strictly_later_whole_second(database_url: str) -> None:
    first = _new_version(database_url, b"v1")
    second = _new_version(database_url, b"v2", voided=True)  # within the same second
    with session_scope(database_url) as session:
        wallet_pass = session.scalars(select(WalletPass)).one()
        assert wallet_pass.latest_version_id == second and wallet_pass.voided is True
        versions = session.scalars(select(PassVersion.version).order_by(PassVersion.id)).all()
        assert versions == [1, 2]
        updates = session.scalars(select(PassUpdate).order_by(PassUpdate.seq)).all()
        assert [u.version_id for u in updates] == [first, second]
        assert updates[1].last_modified >= updates[0].last_modified + timedelta(seconds=1)
        assert all(u.last_modified.microsecond == 0 for u in updates)
        assert current_tag(session, pass_type_identifier=PASS_TYPE) == updates[1].seq
        latest = latest_version(session, pass_id=wallet_pass.id)
        assert (latest.version_id, latest.last_modified) == (second, updates[1].last_modified)
        row = latest_by_identity(session, pass_type_identifier=PASS_TYPE, serial_number="S1")
        assert (row.version_id, row.last_modified) == (second, latest.last_modified)
        assert version_content(session, version_id=second) == b"v2"


def test_a_version_without_a_recorded_update_is_served_from_the_pass_pointer(
    database_url: str,
) -> None:
    version_id = _new_version(database_url, b"legacy", announce=False)
    with session_scope(database_url) as session:
        wallet_pass = session.scalars(select(WalletPass)).one()
        row = latest_by_identity(session, pass_type_identifier=PASS_TYPE, serial_number="S1")
        created = session.get(PassVersion, version_id).created_at  # type: ignore[union-attr]
        # The identity's look-up folds the pass's version pointer in (one statement).
        assert row.id == wallet_pass.id and row.version_id == version_id
        assert row.last_modified.replace(microsecond=0) == created.replace(microsecond=0)
        latest = latest_version(session, pass_id=wallet_pass.id)
        assert latest.version_id == version_id
        assert latest.last_modified == created.replace(microsecond=0)
        assert current_tag(session, pass_type_identifier=PASS_TYPE) == 0


def test_unknown_passes_and_versions(database_url: str) -> None:
    _new_version(database_url, b"v1")
    with session_scope(database_url, write=True) as session:
        assert (
            latest_by_identity(session, pass_type_identifier=PASS_TYPE, serial_number="no") is None
        )
        too_long = "x" * 256
        assert (
            latest_by_identity(session, pass_type_identifier=too_long, serial_number="S1") is None
        )
        with pytest.raises(NotFound):
            version_content(session, version_id=1)
        wallet_pass = session.scalars(select(WalletPass)).one()
        session.execute(update(WalletPass).values(latest_version_id=None))
        session.execute(PassUpdate.__table__.delete())  # type: ignore[attr-defined]
        with pytest.raises(NotFound):
            latest_version(session, pass_id=wallet_pass.id)


def test_creating_a_pass_twice_returns_the_same_row(database_url: str) -> None:
    with session_scope(database_url, write=True) as session:
        first = create_pass(session, IDENTITY)
        again = create_pass(session, IDENTITY)
        assert again.id == first.id
        assert session.scalars(select(WalletPass)).all() == [first]
