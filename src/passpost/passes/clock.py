"""The update clock: a new version becomes visible to devices (the design: ``passes.models``).

The caller owns the transaction, and calls ``record_update`` as late as it can: the pass
type's clock row stays locked until commit.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from passpost.db import dialect_insert, utcnow
from passpost.passes.latest import whole_second
from passpost.passes.models import PassUpdate, PassVersion, UpdateClock, WalletPass

_CLOCK = select(UpdateClock.value).where(UpdateClock.pass_type_identifier == bindparam("pass_type"))


def _next_seq(session: Session, pass_type_identifier: str) -> int:
    """Bump the pass type's clock; its row stays locked until the caller commits."""
    insert = dialect_insert(session, UpdateClock).values(
        pass_type_identifier=pass_type_identifier, value=1
    )
    bump = insert.on_conflict_do_update(
        index_elements=[UpdateClock.pass_type_identifier],
        set_={"value": UpdateClock.value + 1},
    ).returning(UpdateClock.value)
    return int(session.execute(bump).scalar_one())


def current_tag(session: Session, *, pass_type_identifier: str) -> int:
    """The committed clock value of a pass type (0 before its first update)."""
    params = {"pass_type": pass_type_identifier}
    return int(session.connection().execute(_CLOCK, params).scalar() or 0)


def record_update(session: Session, *, wallet_pass: WalletPass, version: PassVersion) -> PassUpdate:
    """Make ``version`` the pass's newest for serials-since tags and Last-Modified."""
    if version.id is None or wallet_pass.id is None:
        session.flush()
    now = utcnow()
    seq = _next_seq(session, wallet_pass.pass_type_identifier)
    # The newest update's Last-Modified is the largest (it only grows): read by the
    # (pass_id, seq) index instead of a max() over every update of the pass.
    previous = session.scalar(
        select(PassUpdate.last_modified)
        .where(PassUpdate.pass_id == wallet_pass.id)
        .order_by(PassUpdate.seq.desc())
        .limit(1)
    )
    last_modified = whole_second(now)
    if previous is not None and last_modified <= previous:
        # HTTP dates have whole seconds: a same-second v2 must still look newer than v1.
        last_modified = previous + timedelta(seconds=1)
    pass_update = PassUpdate(
        pass_id=wallet_pass.id,
        version_id=version.id,
        pass_type_identifier=wallet_pass.pass_type_identifier,
        seq=seq,
        last_modified=last_modified,
        created_at=now,
    )
    session.add(pass_update)
    session.flush()
    return pass_update
