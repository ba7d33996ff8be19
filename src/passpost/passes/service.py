"""A pass's rows: find or create the pass, add a version. The caller owns the transaction."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost import ids, pkpass
from passpost.db import dialect_insert, utcnow
from passpost.passes.models import PassVersion, WalletPass
from passpost.passes.signing import PreparedPass


def locked_pass(session: Session, identity: pkpass.PassIdentity) -> WalletPass | None:
    """The pass with this type and serial, locked until commit; None when there is none."""
    return session.scalars(
        select(WalletPass)
        .where(
            WalletPass.pass_type_identifier == identity.pass_type_identifier,
            WalletPass.serial_number == identity.serial_number,
        )
        .with_for_update()
    ).one_or_none()


def create_pass(session: Session, identity: pkpass.PassIdentity) -> WalletPass:
    """Insert the pass row unless a concurrent import just did; return it locked."""
    now = utcnow()
    session.execute(
        dialect_insert(session, WalletPass)
        .values(
            id=ids.new_id(),
            pass_type_identifier=identity.pass_type_identifier,
            serial_number=identity.serial_number,
            team_identifier=identity.team_identifier,
            updatable=False,
            voided=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["pass_type_identifier", "serial_number"])
    )
    wallet_pass = locked_pass(session, identity)
    assert wallet_pass is not None  # inserted now or by the import that won the race
    return wallet_pass


def add_version(
    session: Session, *, wallet_pass: WalletPass, prepared: PreparedPass, now: datetime
) -> PassVersion:
    """Store ``prepared`` as the pass's next version and make it the latest."""
    wallet_pass.authentication_token = prepared.authentication_token
    wallet_pass.updatable = prepared.updatable
    wallet_pass.voided = bool(prepared.pass_json.get("voided", False))
    wallet_pass.updated_at = now
    latest = session.scalar(
        select(func.max(PassVersion.version)).where(PassVersion.pass_id == wallet_pass.id)
    )
    version = PassVersion(
        id=ids.new_id(),
        pass_id=wallet_pass.id,
        version=(latest or 0) + 1,
        content=prepared.content,
        pass_json=json.dumps(prepared.pass_json, ensure_ascii=False),
        created_at=now,
    )
    session.add(version)
    session.flush()
    wallet_pass.latest_version_id = version.id
    return version
