"""What the console's Passes page shows: passes, their versions and registered devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost.errors import NotFound
from passpost.passes.models import PassUpdate, PassVersion, WalletPass
from passpost.passkit.models import Registration


@dataclass(frozen=True)
class PassRow:
    """One pass with its counts."""

    id: int
    pass_type_identifier: str
    serial_number: str
    updatable: bool
    voided: bool
    versions: int
    devices: int
    updated_at: datetime


def list_passes(session: Session, *, start: int, page_size: int) -> tuple[int, list[PassRow]]:
    """``(total, page)`` of passes, most recently changed first, with version/device counts."""
    total = session.scalar(select(func.count()).select_from(WalletPass)) or 0
    versions = (
        select(func.count())
        .select_from(PassVersion)
        .where(PassVersion.pass_id == WalletPass.id)
        .scalar_subquery()
    )
    devices = (
        select(func.count())
        .select_from(Registration)
        .where(Registration.pass_id == WalletPass.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(WalletPass, versions, devices)
        .order_by(WalletPass.updated_at.desc(), WalletPass.id.desc())
        .offset(start)
        .limit(page_size)
    )
    return total, [
        PassRow(
            p.id,
            p.pass_type_identifier,
            p.serial_number,
            p.updatable,
            p.voided,
            n_versions,
            n_devices,
            p.updated_at,
        )
        for p, n_versions, n_devices in rows
    ]


def get_pass(session: Session, pass_id: int) -> WalletPass:
    """The pass, or ``NotFound``."""
    wallet_pass = session.get(WalletPass, pass_id)
    if wallet_pass is None:
        raise NotFound(f"No pass {pass_id}.", error_code="PASS_NOT_FOUND")
    return wallet_pass


def pass_versions(session: Session, pass_id: int) -> list[dict[str, object]]:
    """The versions of a pass, newest first, with their update tag and Last-Modified."""
    rows = session.execute(
        select(
            PassVersion.version,
            PassVersion.size,
            PassVersion.sha256,
            PassVersion.created_at,
            PassUpdate.seq,
            PassUpdate.last_modified,
        )
        .outerjoin(PassUpdate, PassUpdate.version_id == PassVersion.id)
        .where(PassVersion.pass_id == pass_id)
        .order_by(PassVersion.version.desc())
    )
    return [row._asdict() for row in rows]


def pass_devices(session: Session, pass_id: int) -> list[Registration]:
    """The devices registered for a pass, newest first."""
    return list(
        session.scalars(
            select(Registration)
            .where(Registration.pass_id == pass_id)
            .order_by(Registration.id.desc())
        )
    )
