"""The update clock: a new version becomes visible to devices (the design: ``passes.models``).

The caller owns the transaction, and calls ``record_update`` as late as it can: the pass
type's clock row stays locked until commit.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from passpost.db import utcnow
from passpost.passes.latest import whole_second
from passpost.passes.models import PassUpdate, PassVersion, UpdateClock, WalletPass

_CLOCK = select(UpdateClock.value).where(UpdateClock.pass_type_identifier == bindparam("pass_type"))


@lru_cache(maxsize=2)
def _bump(dialect: str) -> Any:
    # Built once per dialect: every import bumps the clock.
    values = {"pass_type_identifier": bindparam("pass_type"), "value": 1}
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(UpdateClock)
    return (
        insert.values(values)
        .on_conflict_do_update(
            index_elements=[UpdateClock.pass_type_identifier],
            set_={"value": UpdateClock.value + 1},
        )
        .returning(UpdateClock.value)
    )


def _next_seq(session: Session, pass_type_identifier: str) -> int:
    """Bump the pass type's clock; its row stays locked until the caller commits."""
    connection = session.connection()
    bump = _bump(connection.dialect.name)
    return int(connection.execute(bump, {"pass_type": pass_type_identifier}).scalar_one())


def current_tag(session: Session, *, pass_type_identifier: str) -> int:
    """The committed clock value of a pass type (0 before its first update)."""
    params = {"pass_type": pass_type_identifier}
    return int(session.connection().execute(_CLOCK, params).scalar() or 0)


# The newest update's Last-Modified is the largest (it only grows): read by the
# (pass_id, seq) index instead of a max() over every update of the pass.
_PREVIOUS = (
    select(PassUpdate.last_modified)
    .where(PassUpdate.pass_id == bindparam("pass_id"))
    .order_by(PassUpdate.seq.desc())
    .limit(1)
)
_INSERT_UPDATE = insert(PassUpdate).returning(PassUpdate.id)


def record_update(session: Session, *, wallet_pass: WalletPass, version: PassVersion) -> PassUpdate:
    """Make ``version`` the pass's newest for serials-since tags and Last-Modified.

    The update is written with a Core statement; the row returned is not in the session.
    """
    if version.id is None or wallet_pass.id is None:
        session.flush()
    now = utcnow()
    seq = _next_seq(session, wallet_pass.pass_type_identifier)
    connection = session.connection()
    previous = connection.execute(_PREVIOUS, {"pass_id": wallet_pass.id}).scalar()
    last_modified = whole_second(now)
    if previous is not None and last_modified <= previous:
        # HTTP dates have whole seconds: a same-second v2 must still look newer than v1.
        last_modified = previous + timedelta(seconds=1)
    row = {
        "pass_id": wallet_pass.id,
        "version_id": version.id,
        "pass_type_identifier": wallet_pass.pass_type_identifier,
        "seq": seq,
        "last_modified": last_modified,
        "created_at": now,
    }
    update_id = connection.execute(_INSERT_UPDATE, row).scalar_one()
    return PassUpdate(id=update_id, **row)
