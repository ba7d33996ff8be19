"""A pass's rows: find or create the pass, add a version. The caller owns the transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from passpost import ids, pkpass
from passpost.db import dialect_insert, utcnow
from passpost.group_commit import deferred
from passpost.passes.models import PassVersion, WalletPass, store_content
from passpost.passes.signing import PreparedPass

# Built once: the import runs these for every version, and building costs more than running.
_BY_IDENTITY = (
    WalletPass.pass_type_identifier == bindparam("pass_type"),
    WalletPass.serial_number == bindparam("serial"),
)
_LOCKED = select(WalletPass).where(*_BY_IDENTITY).with_for_update()
_LOCKED_ROW = select(*WalletPass.__table__.columns).where(*_BY_IDENTITY).with_for_update()
_SAVED_COLUMNS = (
    "authentication_token",
    "updatable",
    "voided",
    "recipient_count",
    "latest_version_id",
    "kind",
    "updated_at",
)
_SAVE = (
    update(WalletPass.__table__)  # type: ignore[arg-type]
    .where(WalletPass.__table__.c.id == bindparam("pass_id"))
    .values({name: bindparam(name) for name in _SAVED_COLUMNS})
)


def locked_pass(session: Session, identity: pkpass.PassIdentity) -> WalletPass | None:
    """The pass with this type and serial, locked until commit; None when there is none."""
    params = {"pass_type": identity.pass_type_identifier, "serial": identity.serial_number}
    return session.scalars(_LOCKED, params).one_or_none()


def create_pass(
    session: Session,
    identity: pkpass.PassIdentity,
    *,
    read: Callable[[Session, pkpass.PassIdentity], WalletPass | None] = locked_pass,
) -> WalletPass:
    """Insert the pass row unless a concurrent import just did; return it locked, read
    with ``read`` (``locked_pass_row`` on the import's path)."""
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
    wallet_pass = read(session, identity)
    assert wallet_pass is not None  # inserted now or by the import that won the race
    return wallet_pass


def locked_pass_row(session: Session, identity: pkpass.PassIdentity) -> WalletPass | None:
    """``locked_pass`` read with a Core statement, for the import's path.

    The pass returned is not in the session: the caller writes what it changes on it with
    ``save_pass``.
    """
    params = {"pass_type": identity.pass_type_identifier, "serial": identity.serial_number}
    row = session.connection().execute(_LOCKED_ROW, params).first()
    if row is None:
        return None
    wallet_pass = WalletPass(**row._mapping)
    writes = deferred(session)
    saves = [s for s in writes.rows(_SAVE) if s["pass_id"] == row.id] if writes else []
    for name in _SAVED_COLUMNS if saves else ():
        setattr(wallet_pass, name, saves[-1][name])  # saved by an earlier import of the group
    return wallet_pass


def save_pass(session: Session, wallet_pass: WalletPass) -> None:
    """Write what an import changed on a pass from ``locked_pass_row`` (one UPDATE, at the
    group's end when the import may defer it)."""
    params = {name: getattr(wallet_pass, name) for name in _SAVED_COLUMNS}
    params["pass_id"] = wallet_pass.id
    writes = deferred(session)
    if writes is not None:
        writes.add(_SAVE, params)
    else:
        session.connection().execute(_SAVE, params)


_LATEST_NUMBER = select(func.max(PassVersion.version)).where(
    PassVersion.pass_id == bindparam("pass_id")
)
_INSERT_VERSION = insert(PassVersion.__table__)  # type: ignore[arg-type]


def add_version(
    session: Session, *, wallet_pass: WalletPass, prepared: PreparedPass, now: datetime
) -> PassVersion:
    """Store ``prepared`` as the pass's next version and make it the latest.

    Written with Core statements (no flush of ORM objects on the import's path); the
    version returned carries its row's values but is not in the session.
    """
    wallet_pass.authentication_token = prepared.authentication_token
    wallet_pass.updatable = prepared.updatable
    wallet_pass.voided = bool(prepared.pass_json.get("voided", False))
    wallet_pass.updated_at = now
    connection = session.connection()
    latest = connection.execute(_LATEST_NUMBER, {"pass_id": wallet_pass.id}).scalar()
    version_id = ids.new_id()
    row = {
        "id": version_id,
        "pass_id": wallet_pass.id,
        "version": (latest or 0) + 1,
        "pass_json": json.dumps(prepared.pass_json, ensure_ascii=False),
        "sha256": store_content(connection, prepared.content),
        "size": len(prepared.content),
        "created_at": now,
    }
    connection.execute(_INSERT_VERSION, row)
    wallet_pass.latest_version_id = version_id
    return PassVersion(**row)
