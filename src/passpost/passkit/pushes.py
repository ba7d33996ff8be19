"""The push ledger at work: claim due pushes, send them through APNs, record what happened.

One pass per task call. Claiming leases the rows (a dead worker's lease expires and the
sweeper re-queues them); pushes to the same device token are sent once; results are
written per ledger row.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, bindparam, delete, select, update
from sqlalchemy.orm import Session

from passpost.certs import service as certs
from passpost.config import Settings
from passpost.db import UTCDateTime, utcnow
from passpost.metrics import APNS_PUSHES
from passpost.passes.models import WalletPass
from passpost.passkit.apns import (
    ApnsClient,
    ApnsConfigError,
    CertificateAuth,
    PushOutcome,
    token_auth_configured,
)
from passpost.passkit.models import PassPush, PushState, Registration

CLAIM_LIMIT = 5000
_rng = random.Random()


@dataclass(frozen=True)
class Batch:
    """Claimed pushes of one pass, grouped by device token (one APNs request each)."""

    pass_id: int
    topic: str
    by_token: dict[str, list[int]]
    attempts: dict[int, int]
    more: bool  # the claim limit was hit: another run must follow


@dataclass(frozen=True)
class Sender:
    """How to reach APNs for a batch: token auth (``certificate`` None) or certificate auth."""

    certificate: CertificateAuth | None = None
    problem: str | None = None  # set when APNs cannot be used at all


@dataclass(frozen=True)
class Outcome:
    """The result of one APNs request and the ledger rows it answers for."""

    push_ids: list[int]
    token: str
    topic: str
    outcome: PushOutcome
    status: int | None
    reason: str
    apns_id: str | None = None
    retry_after: float | None = None
    unregistered_at: datetime | None = None
    attempts: dict[int, int] = field(default_factory=dict)


def claim(session: Session, *, pass_id: int, settings: Settings) -> Batch | None:
    """Lease the pass's due pushes (skipping rows another worker holds); None when none."""
    now = utcnow()
    query = (
        select(PassPush.id, PassPush.push_token, PassPush.topic, PassPush.attempts)
        .where(
            PassPush.pass_id == pass_id,
            PassPush.state == PushState.PENDING,
            (PassPush.next_attempt_at.is_(None)) | (PassPush.next_attempt_at <= now),
            (PassPush.lease_until.is_(None)) | (PassPush.lease_until < now),
        )
        .order_by(PassPush.id)
        .limit(CLAIM_LIMIT + 1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.execute(query))
    if not rows:
        return None
    more = len(rows) > CLAIM_LIMIT
    rows = rows[:CLAIM_LIMIT]
    ids = [int(r.id) for r in rows]
    session.execute(
        update(PassPush)
        .where(PassPush.id.in_(ids))
        .values(
            lease_until=now + timedelta(seconds=settings.lease_seconds),
            attempts=PassPush.attempts + 1,
        )
    )
    by_token: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_token[r.push_token].append(int(r.id))
    attempts = {int(r.id): int(r.attempts) + 1 for r in rows}
    return Batch(pass_id, rows[0].topic, dict(by_token), attempts, more)


def sender_for(session: Session, *, batch: Batch, settings: Settings) -> Sender:
    """Token auth when configured, else the stored certificate of the pass type."""
    if token_auth_configured(settings):
        return Sender()
    row = certs.certificate_for(session, pass_type_identifier=batch.topic)
    if row is None:
        return Sender(
            problem="APNs is not configured: no .p8 key and no certificate for " + batch.topic
        )
    material = certs.signing_material(session, row)
    try:
        auth = CertificateAuth(
            material.certificate, material.private_key, chain=list(material.intermediates)
        )
    except ApnsConfigError as exc:
        return Sender(problem=str(exc))
    return Sender(certificate=auth)


def _unsent(batch: Batch, reason: str) -> list[Outcome]:
    return [
        Outcome(
            ids,
            token,
            batch.topic,
            PushOutcome.TRANSIENT,
            None,
            reason,
            attempts={i: batch.attempts[i] for i in ids},
        )
        for token, ids in batch.by_token.items()
    ]


async def send(batch: Batch, *, sender: Sender | None, settings: Settings) -> list[Outcome]:
    """Push once per device token of the batch; never raises for APNs trouble."""
    if sender is None or sender.problem is not None:
        return _unsent(batch, (sender.problem if sender else None) or "no APNs sender")
    try:
        client = ApnsClient.from_settings(settings, sender.certificate)
    except ApnsConfigError as exc:
        return _unsent(batch, str(exc))
    tokens = list(batch.by_token)
    async with client:
        results = await client.push_many((token, batch.topic) for token in tokens)
    for result in results:
        APNS_PUSHES.labels(result.outcome.value, str(result.status or "none")).inc()
    return [
        Outcome(
            push_ids=batch.by_token[r.token],
            token=r.token,
            topic=r.topic,
            outcome=r.outcome,
            status=r.status,
            reason=r.reason,
            apns_id=r.apns_id,
            retry_after=r.retry_after,
            unregistered_at=r.unregistered_at,
            attempts={i: batch.attempts[i] for i in batch.by_token[r.token]},
        )
        for r in results
    ]


def _backoff(settings: Settings, attempts: int, retry_after: float | None) -> timedelta:
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    delay = _rng.uniform(ceiling / 2, ceiling)
    return timedelta(seconds=max(delay, retry_after or 0.0))


def _forget_token(session: Session, outcome: Outcome) -> None:
    """APNs says the token is dead for the topic: drop its registrations of that pass type.

    A registration renewed after APNs' ``timestamp`` is younger than the verdict and stays.
    """
    pass_ids = select(WalletPass.id).where(WalletPass.pass_type_identifier == outcome.topic)
    stmt = delete(Registration).where(
        Registration.push_token == outcome.token, Registration.pass_id.in_(pass_ids)
    )
    if outcome.unregistered_at is not None:
        stmt = stmt.where(Registration.updated_at <= outcome.unregistered_at)
    session.execute(stmt)


_RESULT = {
    "lease_until": None,
    "apns_status": bindparam("b_status", type_=Integer),
    "apns_id": bindparam("b_apns_id", type_=String),
    "last_error": bindparam("b_error", type_=Text),
}
# Results are written with one statement per kind, executemany'd over the rows (was one
# UPDATE per push: 5,000 statements for a full claim).
_FINISH = (
    update(PassPush)
    .where(PassPush.id == bindparam("b_id"))
    .values(
        **_RESULT,
        state=bindparam("b_state", type_=String),
        finished_at=bindparam("b_finished", type_=UTCDateTime),
    )
)
_RETRY = (
    update(PassPush)
    .where(PassPush.id == bindparam("b_id"))
    .values(**_RESULT, next_attempt_at=bindparam("b_due", type_=UTCDateTime))
)


def record(session: Session, *, outcomes: list[Outcome], settings: Settings) -> datetime | None:
    """Write each outcome to its ledger rows; the earliest retry time, if any must retry."""
    now = utcnow()
    retry_at: datetime | None = None
    finished: list[dict[str, Any]] = []
    retried: list[dict[str, Any]] = []
    for outcome in outcomes:
        common = {
            "b_status": outcome.status,
            "b_apns_id": outcome.apns_id,
            "b_error": None if outcome.outcome is PushOutcome.OK else outcome.reason,
        }
        if outcome.outcome is PushOutcome.TRANSIENT:
            for push_id in outcome.push_ids:
                attempts = outcome.attempts.get(push_id, settings.retries)
                if attempts >= settings.retries:
                    finished.append(
                        {**common, "b_id": push_id, "b_state": PushState.FAILED, "b_finished": now}
                    )
                else:
                    due = now + _backoff(settings, attempts, outcome.retry_after)
                    retried.append({**common, "b_id": push_id, "b_due": due})
                    retry_at = due if retry_at is None else min(retry_at, due)
            continue
        state = {
            PushOutcome.OK: PushState.SENT,
            PushOutcome.UNREGISTERED: PushState.UNREGISTERED,
        }.get(outcome.outcome, PushState.FAILED)
        finished.extend(
            {**common, "b_id": push_id, "b_state": state, "b_finished": now}
            for push_id in outcome.push_ids
        )
        if outcome.outcome is PushOutcome.UNREGISTERED:
            _forget_token(session, outcome)
    connection = session.connection()
    for statement, rows in ((_FINISH, finished), (_RETRY, retried)):
        if rows:
            connection.execute(statement, rows)
    return retry_at
