"""The latest version of a pass with its Last-Modified: what every download serves.

Both the personal link (``/p/<token>``) and the PassKit web service answer from here, so a
device and a browser see the same version and the same date. It is one indexed statement
(the pass by its key, its newest update by ``(pass_id, seq)``, the pass's own version
pointer for a version imported before updates were recorded), run on a Core connection:
devices poll it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Select, bindparam, func, select
from sqlalchemy.orm import Session

from passpost.db import UTCDateTime
from passpost.errors import NotFound
from passpost.passes.models import PassUpdate, PassVersion, WalletPass

MAX_IDENTIFIER_CHARS = 255


class Executes(Protocol):
    """A Core connection, or what stands in for one on the polled paths (``execute`` only)."""

    def execute(self, statement: Any, parameters: Any, /) -> Any: ...


# A session (the caller's transaction) or, on the polled paths, a bare Core connection.
Database = Session | Connection | Executes


@dataclass(frozen=True, slots=True)
class LatestVersion:
    """What a download needs before deciding between 200 and 304."""

    pass_id: int
    version_id: int
    last_modified: datetime


def whole_second(moment: datetime) -> datetime:
    """``moment`` without its microseconds (HTTP dates have whole seconds)."""
    return moment.replace(microsecond=0)


def executor(db: Database) -> Connection | Executes:
    """What runs a statement for ``db`` (a session's connection, or ``db`` itself)."""
    return db.connection() if isinstance(db, Session) else db


def _newest(where: ColumnElement[bool]) -> Select[int, str | None, int, datetime]:
    """(id, authentication_token, version_id, last_modified) of the pass ``where`` picks.

    ``version_id`` is None when the pass has no version at all.
    """
    return (
        select(
            WalletPass.id,
            WalletPass.authentication_token,
            func.coalesce(PassUpdate.version_id, PassVersion.id).label("version_id"),
            func.coalesce(
                PassUpdate.last_modified, PassVersion.created_at, type_=UTCDateTime
            ).label("last_modified"),
        )
        .select_from(WalletPass)
        .outerjoin(PassUpdate, PassUpdate.pass_id == WalletPass.id)
        .outerjoin(PassVersion, PassVersion.id == WalletPass.latest_version_id)
        .where(where)
        .order_by(PassUpdate.seq.desc())
        .limit(1)
    )


# Built once: devices poll, and building a statement costs more than running it.
_BY_ID = _newest(WalletPass.id == bindparam("pass_id"))
_BY_IDENTITY = _newest(
    (WalletPass.pass_type_identifier == bindparam("pass_type"))
    & (WalletPass.serial_number == bindparam("serial"))
)
_CONTENT = select(PassVersion.content).where(PassVersion.id == bindparam("version_id"))


def as_latest(row: Any) -> LatestVersion:
    """A row of the statement above as a ``LatestVersion``; ``NotFound`` without a version."""
    if row is None or row.version_id is None:
        raise NotFound("The pass has no version.", error_code="PASS_NOT_FOUND")
    # Updates carry whole seconds already; a version's own created_at does not.
    return LatestVersion(int(row.id), int(row.version_id), whole_second(row.last_modified))


def latest_version(db: Database, *, pass_id: int) -> LatestVersion:
    """The newest version's id and Last-Modified, without touching the pass bytes."""
    return as_latest(executor(db).execute(_BY_ID, {"pass_id": pass_id}).first())


def latest_by_identity(db: Database, *, pass_type_identifier: str, serial_number: str) -> Any:
    """One row (id, authentication_token, version_id, last_modified) for a pass, or None.

    For the polled latest-pass call, which checks the token on the same row (``as_latest``
    makes it a ``LatestVersion``).
    """
    if max(len(pass_type_identifier), len(serial_number)) > MAX_IDENTIFIER_CHARS:
        return None
    params = {"pass_type": pass_type_identifier, "serial": serial_number}
    return executor(db).execute(_BY_IDENTITY, params).first()


def version_content(db: Database, *, version_id: int) -> bytes:
    """The exact bytes of one pass version."""
    content = executor(db).execute(_CONTENT, {"version_id": version_id}).scalar()
    if content is None:
        raise NotFound("The pass version is gone.", error_code="PASS_NOT_FOUND")
    return bytes(content)
