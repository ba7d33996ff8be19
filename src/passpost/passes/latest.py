"""The latest version of a pass with its Last-Modified: what every download serves.

Both the personal link (``/p/<token>``) and the PassKit web service answer from here, so a
device and a browser see the same version and the same date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from passpost.errors import NotFound
from passpost.passes.models import PassUpdate, PassVersion, WalletPass

MAX_IDENTIFIER_CHARS = 255


@dataclass(frozen=True, slots=True)
class LatestVersion:
    """What a download needs before deciding between 200 and 304."""

    pass_id: int
    version_id: int
    last_modified: datetime


def whole_second(moment: datetime) -> datetime:
    """``moment`` without its microseconds (HTTP dates have whole seconds)."""
    return moment.replace(microsecond=0)


# Built once: devices poll, and building a statement costs more than running it. Executed on
# the session's connection (Core), which skips the ORM layer.
_LATEST = (
    select(PassUpdate.version_id, PassUpdate.last_modified)
    .where(PassUpdate.pass_id == bindparam("pass_id"))
    .order_by(PassUpdate.seq.desc())
    .limit(1)
)
_BY_IDENTITY = (
    select(
        WalletPass.id,
        WalletPass.authentication_token,
        PassUpdate.version_id,
        PassUpdate.last_modified,
    )
    .outerjoin(PassUpdate, PassUpdate.pass_id == WalletPass.id)
    .where(
        WalletPass.pass_type_identifier == bindparam("pass_type"),
        WalletPass.serial_number == bindparam("serial"),
    )
    .order_by(PassUpdate.seq.desc())
    .limit(1)
)
_POINTER = (
    select(PassVersion.id, PassVersion.created_at)
    .join(WalletPass, WalletPass.latest_version_id == PassVersion.id)
    .where(WalletPass.id == bindparam("pass_id"))
)
_CONTENT = select(PassVersion.content).where(PassVersion.id == bindparam("version_id"))


def latest_version(session: Session, *, pass_id: int) -> LatestVersion:
    """The newest version's id and Last-Modified, without touching the pass bytes."""
    connection = session.connection()
    row = connection.execute(_LATEST, {"pass_id": pass_id}).first()
    if row is not None:
        return LatestVersion(pass_id, int(row.version_id), row.last_modified)
    # A version imported before updates were recorded: fall back to the pass's pointer.
    fallback = connection.execute(_POINTER, {"pass_id": pass_id}).first()
    if fallback is None:
        raise NotFound("The pass has no version.", error_code="PASS_NOT_FOUND")
    return LatestVersion(pass_id, int(fallback.id), whole_second(fallback.created_at))


def latest_by_identity(session: Session, *, pass_type_identifier: str, serial_number: str) -> Any:
    """One row (id, authentication_token, version_id, last_modified) for a pass, or None.

    ``version_id`` is None when the pass has no recorded update: ``latest_version`` then
    finds it. One query, for the polled latest-pass call that also checks the token.
    """
    if max(len(pass_type_identifier), len(serial_number)) > MAX_IDENTIFIER_CHARS:
        return None
    params = {"pass_type": pass_type_identifier, "serial": serial_number}
    return session.connection().execute(_BY_IDENTITY, params).first()


def version_content(session: Session, *, version_id: int) -> bytes:
    """The exact bytes of one pass version."""
    content = session.connection().execute(_CONTENT, {"version_id": version_id}).scalar()
    if content is None:
        raise NotFound("The pass version is gone.", error_code="PASS_NOT_FOUND")
    return bytes(content)
