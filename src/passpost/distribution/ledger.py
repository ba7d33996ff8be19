"""Ledger operations of the workers: hand due deliveries to batches, claim, record outcomes.

Every step is a conditional UPDATE, so several workers and sweepers can run at once:
a delivery belongs to exactly one batch at a time (``batch_id``), a batch task claims only
the rows still assigned to it, and a lease that runs out (a killed worker) makes the rows
due again. A duplicate send is possible only for rows in flight when a worker died.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import ColumnElement, Connection, Dialect, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from passpost import ids
from passpost.channels.base import Receipt
from passpost.config import Settings
from passpost.db import bind_processor, placeholder
from passpost.distribution.models import Channel, Delivery, DeliveryState, DistributionRequest


@dataclass(frozen=True)
class Batch:
    id: int
    priority: bool
    size: int


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Delivery.state == DeliveryState.QUEUED,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
    ]


def assign_batches(
    session: Session,
    *,
    now: datetime,
    settings: Settings,
    max_batches: int,
    request_id: int | None = None,
) -> list[Batch]:
    """Give up to ``max_batches`` batches of due, unleased deliveries a new batch id each.

    Priority deliveries first; the rows get a lease so that no other sweeper takes them.
    """
    limit = settings.batch_size * max_batches
    query = (
        select(Delivery.id, Delivery.priority)
        .join(DistributionRequest, DistributionRequest.id == Delivery.request_id)
        .where(*_due(now), DistributionRequest.cancelled_at.is_(None))
        .limit(limit)
    )
    if request_id is None:
        # Walks the (state, priority, next_attempt_at) index from the top and stops at the
        # limit: new rows, then the longest-waiting retries (ordering by id as well would
        # sort every queued row of every request first).
        rows = session.execute(query.order_by(Delivery.priority.desc())).all()
    else:
        # One request (the feed after each batch): per channel, the (request_id, channel,
        # state) index gives its rows in id order, so each walk stops at the limit instead
        # of sorting the request's 100,000 queued rows after every batch.
        found = [
            row
            for channel in Channel.ALL
            for row in session.execute(
                query.where(
                    Delivery.request_id == request_id, Delivery.channel == channel
                ).order_by(Delivery.id)
            )
        ]
        rows = sorted(found, key=lambda row: row.id)[:limit]
    batches: list[Batch] = []
    lease = now + timedelta(seconds=settings.lease_seconds)
    for priority in (True, False):
        wanted = [row.id for row in rows if bool(row.priority) is priority]
        for start in range(0, len(wanted), settings.batch_size):
            chunk = wanted[start : start + settings.batch_size]
            batch_id = ids.new_id()
            result = session.execute(
                update(Delivery)
                .where(Delivery.id.in_(chunk), *_due(now))
                .values(batch_id=batch_id, lease_until=lease)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                batches.append(Batch(batch_id, priority, result.rowcount))  # type: ignore[attr-defined]
    return batches


@dataclass(frozen=True)
class Claimed:
    """A delivery as its batch claimed it (``attempts`` counts this attempt)."""

    id: int
    request_id: int
    holder_id: int
    channel: str
    attempts: int


class PriorityWaiting(enum.Enum):
    """What a normal batch finds of priority work before it is sent."""

    NONE = "none"  # nothing: it may go
    UNTAKEN = "untaken"  # due rows no batch holds: take them and send them first
    TAKEN = "taken"  # rows a batch holds (queued, or being sent): go after them, by the queue


def priority_waiting(session: Session, *, now: datetime) -> PriorityWaiting:
    """Whether priority deliveries are due and waiting, and whether a batch holds them.

    Two look-ups on the (state, priority, next_attempt_at) index, each stopping at its
    first row.
    """
    pending = (
        Delivery.state == DeliveryState.QUEUED,
        Delivery.priority.is_(True),
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
    )
    if session.execute(select(Delivery.id).where(*_due(now), *pending[1:]).limit(1)).first():
        return PriorityWaiting.UNTAKEN
    taken = session.execute(
        select(Delivery.id).where(*pending, Delivery.lease_until >= now).limit(1)
    ).first()
    return PriorityWaiting.NONE if taken is None else PriorityWaiting.TAKEN


def claim(session: Session, *, batch_id: int, now: datetime, settings: Settings) -> list[Claimed]:
    """Take the rows still assigned to ``batch_id``: count the attempt, and renew their
    lease from ``now`` if less than half of it is left (the batch waited in the queue).

    One ``UPDATE … RETURNING`` (Core rows, no ORM objects: a batch holds hundreds). The
    lease the assignment gave is usually fresh: rewriting it for every row cost as much as
    the rest of the claim (two indexes hold it). The heartbeat renews it every third of a
    lease while the batch is sent.
    """
    table = Delivery.__table__
    owned = (table.c.batch_id == batch_id, table.c.state == DeliveryState.QUEUED)
    connection = session.connection()
    rows = connection.execute(
        table.update()  # type: ignore[attr-defined]
        .where(*owned)
        .values(attempts=table.c.attempts + 1, updated_at=now)
        .returning(
            table.c.id, table.c.request_id, table.c.holder_id, table.c.channel, table.c.attempts
        )
    )
    claimed = [Claimed(*row) for row in rows]
    if claimed:
        half = timedelta(seconds=settings.lease_seconds / 2)
        connection.execute(
            table.update()  # type: ignore[attr-defined]
            .where(*owned, table.c.lease_until < now + half)
            .values(lease_until=now + timedelta(seconds=settings.lease_seconds))
        )
    claimed.sort(key=lambda row: row.id)
    return claimed


def renew_lease(session: Session, *, batch_id: int, now: datetime, settings: Settings) -> int:
    """Extend the lease of a batch still being sent (the worker is alive); rows renewed."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.batch_id == batch_id, Delivery.state == DeliveryState.QUEUED)
        .values(lease_until=now + timedelta(seconds=settings.lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def expire_overdue(session: Session, *, now: datetime) -> int:
    """Deliveries still pending after their request's ``endTimeStamp`` end ``undelivered``."""
    overdue = select(DistributionRequest.id).where(
        DistributionRequest.end_at.is_not(None), DistributionRequest.end_at < now
    )
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.state == DeliveryState.QUEUED,
            Delivery.request_id.in_(overdue),
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        .values(
            state=DeliveryState.UNDELIVERED,
            last_error="expired: endTimeStamp passed before it could be sent",
            finished_at=now,
            batch_id=None,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


RETRY = "retry"


@dataclass(frozen=True)
class Outcome:
    """What happened to one send."""

    delivery_id: int
    state: str  # submitted | rejected | not attempted | undelivered | "retry"
    detail: str | None = None
    provider_message_id: str | None = None
    at: datetime | None = None  # when the provider took it (a submission); default: recorded


@dataclass(frozen=True)
class Recorded:
    """An outcome as written to the ledger: the row's new state (``retry``: queued again)."""

    delivery_id: int
    channel: str
    state: str
    detail: str | None
    attempts: int


def record_outcomes(
    session: Session,
    *,
    batch_id: int,
    claimed: Mapping[int, Claimed],
    outcomes: Sequence[Outcome],
    now: datetime,
    settings: Settings,
    end_at: dict[int, datetime | None],
) -> list[Recorded]:
    """Write each send's outcome, if this batch still owns the row.

    Sent rows (nearly all) take one statement per ``_VALUES_ROWS`` rows; the rest one
    executemany.

    ``claimed`` are the rows as ``claim`` returned them (attempts already counted).
    """
    sent: dict[int, Outcome] = {}
    other: list[dict[str, object]] = []
    recorded: list[Recorded] = []
    for outcome in outcomes:
        row = claimed[outcome.delivery_id]
        if outcome.state == DeliveryState.SUBMITTED:
            recorded.append(
                Recorded(row.id, row.channel, outcome.state, outcome.detail or None, row.attempts)
            )
            sent[row.id] = outcome
            continue
        values = _outcome_values(row.attempts, outcome, now, settings, end_at.get(row.request_id))
        state = RETRY if values["state"] == DeliveryState.QUEUED else str(values["state"])
        detail = str(values["last_error"] or outcome.detail or "") or None
        recorded.append(Recorded(row.id, row.channel, state, detail, row.attempts))
        other.append({"b_id": outcome.delivery_id, **{f"b_{k}": v for k, v in values.items()}})
    table = Delivery.__table__
    owned = and_(table.c.batch_id == batch_id, table.c.state == DeliveryState.QUEUED)
    released = {"batch_id": None, "lease_until": None, "updated_at": now}
    connection = session.connection()
    if sent:
        _record_sent(connection, batch_id=batch_id, sent=sent, now=now)
    if other:
        connection.execute(
            table.update()  # type: ignore[attr-defined]
            .where(table.c.id == bindparam("b_id"), owned)
            .values({column: bindparam(f"b_{column}") for column in _OUTCOME_COLUMNS} | released),
            other,
        )
    return recorded


# Rows per UPDATE … FROM (VALUES …) statement: three parameters each, well under SQLite's
# 32,766 and PostgreSQL's 65,535 parameters.
_VALUES_ROWS = 1000


def _record_sent(
    connection: Connection, *, batch_id: int, sent: Mapping[int, Outcome], now: datetime
) -> None:
    """Mark rows the provider took ``submitted``, with their message ids and moments.

    One ``UPDATE … FROM (VALUES …)`` per chunk, written as SQL once per dialect and given
    to the driver as it is: an executemany through SQLAlchemy processed every row's
    parameters in Python (~14 % of the worker's time at 100,000 e-mails). A row is written
    only while this batch owns it, or when the request was cancelled meanwhile (the
    message really left: that is recorded).
    """
    dialect = connection.dialect
    stamp = _timestamp_processor(dialect)
    shared = [DeliveryState.SUBMITTED, stamp(now), stamp(now), batch_id, DeliveryState.QUEUED]
    shared.append(DeliveryState.CANCELLED)
    rows = list(sent.values())
    for start in range(0, len(rows), _VALUES_ROWS):
        chunk = rows[start : start + _VALUES_ROWS]
        values: list[object] = []
        for outcome in chunk:
            values += (outcome.delivery_id, outcome.provider_message_id, stamp(outcome.at or now))
        connection.exec_driver_sql(
            _sent_sql(dialect.name, dialect.paramstyle, len(chunk)),
            (*shared[:3], *values, *shared[3:]),
        )


def _timestamp_processor(dialect: Dialect) -> Callable[[datetime], object]:
    """A datetime as the driver takes it for a ``UTCDateTime`` column (SQLite: text)."""
    # The dialect's own type (SQLite: its text form): the generic type's processor left
    # the datetime to sqlite3's adapter, which wrote another form ("… +00:00").
    process = bind_processor(Delivery.__table__.c.submitted_at.type, dialect)
    return process if process is not None else (lambda value: value)


def _values(
    dialect: str, mark: str, rows: int, columns: tuple[tuple[str, str], ...]
) -> tuple[str, tuple[str, ...]]:
    """A ``VALUES`` list of ``rows`` rows named ``v`` (``columns``: name and PostgreSQL
    type each), and how a statement names its columns."""
    if dialect == "postgresql":
        row = "(" + ", ".join(f"{mark}::{kind}" for _, kind in columns) + ")"
        names = ", ".join(name for name, _ in columns)
        refs = tuple(f"v.{name}" for name, _ in columns)
        return f"(VALUES {', '.join([row] * rows)}) AS v ({names})", refs
    # SQLite names a VALUES list's columns itself
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    refs = tuple(f"v.column{n}" for n in range(1, len(columns) + 1))
    return f"(VALUES {', '.join([row] * rows)}) AS v", refs


@lru_cache(maxsize=32)
def _sent_sql(dialect: str, paramstyle: str, rows: int) -> str:
    mark = placeholder(paramstyle)
    source, columns = _values(
        dialect,
        mark,
        rows,
        (("id", "bigint"), ("message_id", "varchar"), ("submitted_at", "timestamptz")),
    )
    return (
        f"UPDATE delivery SET state = {mark}, provider_message_id = {columns[1]}, "
        f"submitted_at = {columns[2]}, finished_at = {mark}, last_error = NULL, "
        f"next_attempt_at = NULL, batch_id = NULL, lease_until = NULL, updated_at = {mark} "
        f"FROM {source} WHERE delivery.id = {columns[0]} "
        f"AND ((delivery.batch_id = {mark} AND delivery.state = {mark}) "
        f"OR delivery.state = {mark})"
    )


_OUTCOME_COLUMNS = (
    "state",
    "provider_message_id",
    "submitted_at",
    "finished_at",
    "last_error",
    "next_attempt_at",
)


def _outcome_values(
    attempts: int,
    outcome: Outcome,
    now: datetime,
    settings: Settings,
    end_at: datetime | None,
) -> dict[str, object]:
    """The new values of ``_OUTCOME_COLUMNS`` for one outcome."""
    values: dict[str, object] = dict.fromkeys(_OUTCOME_COLUMNS)
    if outcome.state == DeliveryState.SUBMITTED:
        return values | {
            "state": DeliveryState.SUBMITTED,
            "provider_message_id": outcome.provider_message_id,
            "submitted_at": now,
            "finished_at": now,
        }
    if outcome.state in (
        DeliveryState.REJECTED,
        DeliveryState.NOT_ATTEMPTED,
        DeliveryState.UNDELIVERED,
    ):
        return values | {"state": outcome.state, "last_error": outcome.detail, "finished_at": now}
    if attempts > settings.retries:
        return values | {
            "state": DeliveryState.UNDELIVERED,
            "last_error": f"gave up after {attempts} attempts: {outcome.detail}",
            "finished_at": now,
        }
    next_at = now + timedelta(seconds=backoff_seconds(attempts, settings))
    if end_at is not None and next_at > end_at:
        return values | {
            "state": DeliveryState.UNDELIVERED,
            "last_error": f"expired before a retry could be made: {outcome.detail}",
            "finished_at": now,
        }
    return values | {
        "state": DeliveryState.QUEUED,
        "next_attempt_at": next_at,
        "last_error": outcome.detail,
    }


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, scaled by a random 50–100 %."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)


_RECEIPTABLE = (DeliveryState.SUBMITTED, DeliveryState.QUEUED)
UNDELIVERED_WITHOUT_DETAIL = "provider reported the message undelivered"


def settle_receipts(session: Session, receipts: Sequence[Receipt], now: datetime) -> list[Receipt]:
    """Record many delivery receipts at once (``service.apply_receipt``'s rules, in Core).

    A receipt settles a delivery still ``submitted`` (or ``queued``): ``delivered``, or
    ``undelivered`` with the provider's reason; it never undoes a later state (an open).
    Returns the receipts naming no recorded message (the caller parks them).
    """
    table = Delivery.__table__
    wanted = {r.provider_message_id for r in receipts}
    connection = session.connection()
    # One UPDATE … FROM (VALUES …) per chunk (see ``_record_sent``): the SMSC sends a
    # receipt for every message, as many as the sends themselves.
    known = set(
        connection.execute(
            select(table.c.provider_message_id).where(table.c.provider_message_id.in_(wanted))
        ).scalars()
    )
    settled: dict[str, Receipt] = {}
    for receipt in receipts:  # the first receipt of a message wins, as one by one
        if receipt.provider_message_id in known:
            settled.setdefault(receipt.provider_message_id, receipt)
    rows = list(settled.values())
    stamp = _timestamp_processor(connection.dialect)
    for start in range(0, len(rows), _VALUES_ROWS):
        chunk = rows[start : start + _VALUES_ROWS]
        values: list[object] = []
        for r in chunk:
            state = DeliveryState.DELIVERED if r.delivered else DeliveryState.UNDELIVERED
            error = None if r.delivered else r.detail or UNDELIVERED_WITHOUT_DETAIL
            values += (r.provider_message_id, state, error)
        dialect = connection.dialect
        connection.exec_driver_sql(
            _receipt_sql(dialect.name, dialect.paramstyle, len(chunk)),
            (stamp(now), stamp(now), *values, *_RECEIPTABLE),
        )
    return [r for r in receipts if r.provider_message_id not in known]


@lru_cache(maxsize=32)
def _receipt_sql(dialect: str, paramstyle: str, rows: int) -> str:
    mark = placeholder(paramstyle)
    source, columns = _values(
        dialect, mark, rows, (("message_id", "varchar"), ("state", "varchar"), ("error", "text"))
    )
    return (
        f"UPDATE delivery SET state = {columns[1]}, finished_at = {mark}, updated_at = {mark}, "
        f"last_error = CASE WHEN {columns[2]} IS NULL THEN delivery.last_error "
        f"ELSE {columns[2]} END "
        f"FROM {source} WHERE delivery.provider_message_id = {columns[0]} "
        f"AND delivery.state IN ({mark}, {mark})"
    )
