"""PassKit Web Service: registrations, serials since a tag, the latest pass, device logs.

Plain functions; the caller owns the transaction. The tag design is described in
``passpost.passkit.models``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    bindparam,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm import Session

from passpost import jsontext
from passpost.db import dialect_insert, insert_for, utcnow
from passpost.errors import BadRequest, TooManyRequests, Unauthorized
from passpost.group_commit import deferred
from passpost.passes.clock import record_update
from passpost.passes.latest import (
    MAX_IDENTIFIER_CHARS,
    Database,
    LatestVersion,
    as_latest,
    executor,
    latest_by_identity,
)
from passpost.passes.models import PassUpdate, PassVersion, UpdateClock, WalletPass
from passpost.passkit.models import (
    DeviceLog,
    InstallEvent,
    InstallKind,
    PassPush,
    PushState,
    Registration,
)

# Authorization schemes: Apple Wallet, and the WalletPasses app on Android.
AUTH_SCHEMES = ("applepass", "androidpass")
# One log call from an anonymous client: at most this many entries, each cut to
# MAX_LOG_CHARS, together at most MAX_LOG_CALL_CHARS (Wallet sends a line or two).
MAX_LOG_ENTRIES = 100
MAX_LOG_CHARS = 2000
MAX_LOG_CALL_CHARS = 16384
MAX_TAG_DIGITS = 18  # fits a signed 64-bit integer
REGISTRATION_WINDOW_SECONDS = 3600
# Compared against when the pass is unknown, so that both 401s cost the same.
_DUMMY_TOKEN = b"passpost-no-such-pass-" + b"x" * 42


@dataclass(frozen=True, slots=True)
class SerialsSince:
    """The answer of the serials-since call; ``last_updated`` is the next tag."""

    serial_numbers: list[str]
    last_updated: str


# -- helpers -----------------------------------------------------------------------------


def parse_authorization(header: str | None) -> str | None:
    """The token of an ``ApplePass``/``AndroidPass`` Authorization header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in AUTH_SCHEMES or not token:
        return None
    return token


# Built once: registrations authenticate on every call (see ``passes.latest``).
_PASS_TOKEN = select(WalletPass.id, WalletPass.authentication_token).where(
    WalletPass.pass_type_identifier == bindparam("pass_type"),
    WalletPass.serial_number == bindparam("serial"),
)


def _check_token(row: Any, authorization: str | None) -> int:
    """The pass id when the header's token is the row's; ``Unauthorized`` otherwise.

    An unknown pass (``row`` None) and a wrong token answer alike and cost about the same,
    so serial numbers cannot be probed.
    """
    token = parse_authorization(authorization)
    expected = row.authentication_token.encode() if row and row.authentication_token else None
    given = token.encode() if token else b""
    matches = hmac.compare_digest(given, expected or _DUMMY_TOKEN)
    if row is None or expected is None or token is None or not matches:
        raise Unauthorized("Invalid or missing pass authorization.", error_code="PASS_UNAUTHORIZED")
    return int(row.id)


def authenticate_pass(
    session: Session, *, pass_type_identifier: str, serial_number: str, authorization: str | None
) -> int:
    """The pass id if the header's token is the pass's; ``Unauthorized`` otherwise."""
    row = None
    if max(len(pass_type_identifier), len(serial_number)) <= MAX_IDENTIFIER_CHARS:
        params = {"pass_type": pass_type_identifier, "serial": serial_number}
        row = session.connection().execute(_PASS_TOKEN, params).first()
    return _check_token(row, authorization)


def authenticate_latest(
    db: Database, *, pass_type_identifier: str, serial_number: str, authorization: str | None
) -> LatestVersion:
    """``authenticate_pass`` and the latest version in one query (the polled latest-pass call)."""
    row = latest_by_identity(
        db, pass_type_identifier=pass_type_identifier, serial_number=serial_number
    )
    _check_token(row, authorization)
    return as_latest(row)


# -- updates and pushes ------------------------------------------------------------------


def announce_update(session: Session, *, wallet_pass: WalletPass, version: PassVersion) -> None:
    """Make a new version visible to serials-since tags and queue a push per registration.

    Called inside the import transaction (call it as late as possible: it holds the pass
    type's clock row until commit). Pushes are only ledger rows here; the caller enqueues
    ``passpost.passkit.tasks.push_pass_update`` after the commit.
    """
    pass_update = record_update(session, wallet_pass=wallet_pass, version=version)
    now = utcnow()
    writes = deferred(session)
    if writes is not None:
        # At the group's end, with the group's other imports' pushes (one executemany): no
        # registration can appear meanwhile, the group holds the writer lock.
        statement = _pushes_statement(session.connection().dialect.name)
        writes.add(statement, {"pass_id": wallet_pass.id, "update_id": pass_update.id, "now": now})
        return
    _add_pushes(session, pass_id=wallet_pass.id, update_id=pass_update.id, now=now)


def _add_pushes(session: Session, *, pass_id: int, update_id: int | None, now: datetime) -> int:
    """One pending push ledger row per registration of the pass (INSERT … SELECT)."""
    connection = session.connection()
    params = {"pass_id": pass_id, "update_id": update_id, "now": now}
    result = connection.execute(_pushes_statement(connection.dialect.name), params)
    return int(getattr(result, "rowcount", 0) or 0)


@lru_cache(maxsize=2)
def _pushes_statement(dialect: str) -> Any:
    # Built once per dialect: every new version of a pass runs it.
    source = (
        select(
            bindparam("pass_id", type_=BigInteger),
            bindparam("update_id", type_=BigInteger),
            Registration.id,
            Registration.device_library_identifier,
            Registration.push_token,
            WalletPass.pass_type_identifier,
            literal(PushState.PENDING),
            literal(0),
            bindparam("now", type_=PassPush.created_at.type),
        )
        .join(WalletPass, WalletPass.id == Registration.pass_id)
        .where(Registration.pass_id == bindparam("pass_id"))
    )
    return insert_for(dialect, PassPush).from_select(
        [
            PassPush.pass_id,
            PassPush.update_id,
            PassPush.registration_id,
            PassPush.device_library_identifier,
            PassPush.push_token,
            PassPush.topic,
            PassPush.state,
            PassPush.attempts,
            PassPush.created_at,
        ],
        source,
    )


def request_repush(session: Session, *, pass_id: int) -> int:
    """Queue a push to every registration of a pass (no new version); returns how many."""
    return _add_pushes(session, pass_id=pass_id, update_id=None, now=utcnow())


def requeue_due_pushes(session: Session) -> list[int]:
    """Pass ids with pushes due now: pending, not waiting for a retry, not leased (or expired)."""
    now = utcnow()
    rows = session.scalars(
        select(PassPush.pass_id)
        .where(
            PassPush.state == PushState.PENDING,
            (PassPush.next_attempt_at.is_(None)) | (PassPush.next_attempt_at <= now),
            (PassPush.lease_until.is_(None)) | (PassPush.lease_until < now),
        )
        .distinct()
    )
    return sorted(int(r) for r in rows)


# -- registrations -----------------------------------------------------------------------


def parse_push_token(body: bytes) -> str:
    """The ``pushToken`` of a registration body; ``BadRequest`` for bad JSON or none."""
    data = jsontext.loads(body)
    token = data.get("pushToken") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token.strip() or len(token) > 255:
        raise BadRequest("The body needs a pushToken string.", error_code="PUSH_TOKEN_REQUIRED")
    return token.strip()


def _check_device(device_library_identifier: str) -> None:
    if not device_library_identifier or len(device_library_identifier) > MAX_IDENTIFIER_CHARS:
        raise BadRequest("Invalid device library identifier.", error_code="INVALID_DEVICE")


@dataclass(frozen=True, slots=True)
class RegistrationLimits:
    """How many devices a pass, and a client address in an hour, may register."""

    per_pass: int  # the floor, whatever the pass's audience
    per_recipient: int  # a pass accepts this many devices per known recipient
    per_address_hour: int


def register_device(
    session: Session,
    *,
    pass_id: int,
    device_library_identifier: str,
    push_token: str,
    remote_addr: str | None = None,
    limits: RegistrationLimits | None = None,
) -> bool:
    """Register a device for a pass's updates; True when new, False when already there.

    A new registration beyond ``limits`` is ``TooManyRequests``: a pass's token is shared
    by all its holders, and each registration costs a push on every update.
    """
    _check_device(device_library_identifier)
    remote_addr = (remote_addr or "")[:64] or None
    if limits is not None and not _is_registered(session, pass_id, device_library_identifier):
        _check_room(session, pass_id=pass_id, remote_addr=remote_addr, limits=limits)
    now = utcnow()
    stmt = (
        dialect_insert(session, Registration)
        .values(
            device_library_identifier=device_library_identifier,
            pass_id=pass_id,
            push_token=push_token,
            remote_addr=remote_addr,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["device_library_identifier", "pass_id"])
        .returning(Registration.id)
    )
    created = session.execute(stmt).scalar_one_or_none() is not None
    if created:
        _install_event(session, pass_id, device_library_identifier, InstallKind.INSTALL, now)
    # The push token belongs to the device: a new one applies to all its registrations.
    session.execute(
        update(Registration)
        .where(
            Registration.device_library_identifier == device_library_identifier,
            Registration.push_token != push_token,
        )
        .values(push_token=push_token, updated_at=now)
    )
    return created


def _is_registered(session: Session, pass_id: int, device_library_identifier: str) -> bool:
    return (
        session.scalar(
            select(Registration.id).where(
                Registration.pass_id == pass_id,
                Registration.device_library_identifier == device_library_identifier,
            )
        )
        is not None
    )


def _check_room(
    session: Session, *, pass_id: int, remote_addr: str | None, limits: RegistrationLimits
) -> None:
    recipients = session.scalar(select(WalletPass.recipient_count).where(WalletPass.id == pass_id))
    cap = max(limits.per_pass, limits.per_recipient * int(recipients or 0))
    registered = session.scalar(
        select(func.count()).select_from(Registration).where(Registration.pass_id == pass_id)
    )
    if int(registered or 0) >= cap:
        raise TooManyRequests(
            f"This pass already has {cap} registered devices, its limit.",
            error_code="TOO_MANY_DEVICES",
            retry_after=REGISTRATION_WINDOW_SECONDS,
        )
    if remote_addr is None:
        return
    since = utcnow() - timedelta(seconds=REGISTRATION_WINDOW_SECONDS)
    recent = session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(Registration.remote_addr == remote_addr, Registration.created_at > since)
    )
    if int(recent or 0) >= limits.per_address_hour:
        raise TooManyRequests(
            f"At most {limits.per_address_hour} new device registrations an hour from one address.",
            error_code="TOO_MANY_REGISTRATIONS",
            retry_after=REGISTRATION_WINDOW_SECONDS,
        )


def unregister_device(session: Session, *, pass_id: int, device_library_identifier: str) -> None:
    """Forget a device's registration for a pass (nothing to do when there is none)."""
    _check_device(device_library_identifier)
    registration = session.scalars(
        select(Registration).where(
            Registration.device_library_identifier == device_library_identifier,
            Registration.pass_id == pass_id,
        )
    ).one_or_none()
    if registration is not None:
        session.delete(registration)
        _install_event(session, pass_id, device_library_identifier, InstallKind.REMOVAL, utcnow())


def _install_event(session: Session, pass_id: int, device: str, kind: str, now: datetime) -> None:
    """Install analytics (SPEC §13): a registration is an install, an unregistration a removal."""
    session.add(InstallEvent(pass_id=pass_id, device_library_identifier=device, kind=kind, at=now))


def parse_tag(tag: str | None) -> int | None:
    """A ``passesUpdatedSince`` tag as an integer; None when absent; ``BadRequest`` if bad."""
    if tag is None or tag == "":
        return None
    if not tag.isascii() or not tag.isdigit() or len(tag) > MAX_TAG_DIGITS:
        raise BadRequest(
            "passesUpdatedSince must be a tag returned as lastUpdated.", error_code="INVALID_TAG"
        )
    return int(tag)


# The pass type's committed clock value (0 before its first update), read in the same
# statement (one snapshot) as the serials: every update numbered up to it is visible there,
# because the clock row's lock makes updates commit in clock order (see models).
_TAG = func.coalesce(
    select(UpdateClock.value)
    .where(UpdateClock.pass_type_identifier == bindparam("pass_type"))
    .scalar_subquery(),
    0,
)
# The pass type is compared as an expression (`` || ''``) so that SQLite starts from the
# device's registrations (a handful) and not from every pass of the type: without
# statistics its planner preferred the (pass type, serial) index, which also yields the
# ORDER BY, and scanned all the type's passes on every poll.
_REGISTERED_SERIALS = (
    select(WalletPass.serial_number, _TAG.label("tag"))
    .select_from(Registration)
    .join(WalletPass, WalletPass.id == Registration.pass_id)
    .where(
        Registration.device_library_identifier == bindparam("device"),
        (WalletPass.pass_type_identifier + literal_column("''")) == bindparam("pass_type"),
    )
    .order_by(WalletPass.serial_number)
)
_SINCE = bindparam("since", type_=BigInteger)
# A tag from the future (restored database, another server) would hide updates for a
# while: it is answered with every registered serial instead.
_UPDATED_SERIALS = _REGISTERED_SERIALS.where(
    (_SINCE > _TAG) | exists().where(PassUpdate.pass_id == WalletPass.id, PassUpdate.seq > _SINCE)
)


def serials_since(
    db: Database,
    *,
    device_library_identifier: str,
    pass_type_identifier: str,
    since: int | None,
) -> SerialsSince | None:
    """Serials of the device's passes of a type updated after ``since``; None when none."""
    _check_device(device_library_identifier)
    if len(pass_type_identifier) > MAX_IDENTIFIER_CHARS:
        return None
    params: dict[str, Any] = {
        "device": device_library_identifier,
        "pass_type": pass_type_identifier,
    }
    query = _REGISTERED_SERIALS
    if since is not None:
        query, params["since"] = _UPDATED_SERIALS, since
    rows = executor(db).execute(query, params).all()
    if not rows:
        return None
    return SerialsSince(
        serial_numbers=[row.serial_number for row in rows], last_updated=str(rows[0].tag)
    )


# -- device logs -------------------------------------------------------------------------


def parse_logs(body: bytes) -> list[str]:
    """The ``logs`` list of a log body as strings; ``BadRequest`` for anything else."""
    data = jsontext.loads(body)
    logs = data.get("logs") if isinstance(data, dict) else None
    if not isinstance(logs, list):
        raise BadRequest("The body needs a logs list.", error_code="LOGS_NOT_A_LIST")
    if len(logs) > MAX_LOG_ENTRIES:
        raise BadRequest(
            f"At most {MAX_LOG_ENTRIES} log entries per call.", error_code="TOO_MANY_LOGS"
        )
    messages = [e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in logs]
    messages = [m[:MAX_LOG_CHARS] for m in messages]
    if sum(len(m) for m in messages) > MAX_LOG_CALL_CHARS:
        raise BadRequest(
            f"At most {MAX_LOG_CALL_CHARS} characters of log entries per call "
            f"(each entry is cut to {MAX_LOG_CHARS}).",
            error_code="LOGS_TOO_LARGE",
        )
    return messages


def store_logs(
    session: Session,
    *,
    messages: Sequence[str],
    remote_addr: str | None,
    user_agent: str | None,
    max_rows: int,
) -> int:
    """Store device log messages for operators, keeping the newest ``max_rows``; how many."""
    if not messages:
        return 0
    now = utcnow()
    session.add_all(
        DeviceLog(
            message=message,
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:255] or None,
            received_at=now,
        )
        for message in messages
    )
    session.flush()
    prune_logs(session, max_rows=max_rows)
    return len(messages)


def prune_logs(session: Session, *, max_rows: int) -> None:
    """Delete the oldest device logs beyond the newest ``max_rows``.

    Ids are assigned in insert order with few gaps (a rolled-back insert leaves one), so
    "id <= newest - max_rows" keeps at most ``max_rows`` rows with two index lookups,
    where counting or an OFFSET would scan the table on every anonymous call.
    """
    newest = session.scalar(select(func.max(DeviceLog.id)))
    if newest is not None and newest > max_rows:
        session.execute(delete(DeviceLog).where(DeviceLog.id <= newest - max_rows))


def list_logs(session: Session, *, start: int, page_size: int) -> tuple[int, list[DeviceLog]]:
    """Device logs, newest first: the total and one page."""
    total = int(session.scalar(select(func.count()).select_from(DeviceLog)) or 0)
    rows = session.scalars(
        select(DeviceLog).order_by(DeviceLog.id.desc()).offset(start).limit(page_size)
    )
    return total, list(rows)
