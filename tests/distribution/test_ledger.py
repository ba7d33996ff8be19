"""The delivery ledger in-process (SQLite and PostgreSQL): batches, claims, leases, outcomes.

Every step takes ``now`` explicitly, so leases and backoff are tested without waiting.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from passpost.config import Settings
from passpost.db import session_scope, utcnow
from passpost.distribution import ledger, service
from passpost.distribution.ledger import Outcome
from passpost.distribution.models import Delivery, DeliveryState
from tests.support.ledger import deliveries, import_request
from tests.support.passes import TestPki

ADA, BOB, CAROL = ({"email": f"{n}@example.com"} for n in ("ada", "bob", "carol"))


def assign(
    settings: Settings, now: datetime, *, max_batches: int = 10, request_id: int | None = None
) -> list[ledger.Batch]:
    with session_scope(settings.resolved_database_url, write=True) as session:
        return ledger.assign_batches(
            session, now=now, settings=settings, max_batches=max_batches, request_id=request_id
        )


def claim(settings: Settings, batch_id: int, now: datetime) -> dict[int, Delivery]:
    with session_scope(settings.resolved_database_url, write=True) as session:
        rows = ledger.claim(session, batch_id=batch_id, now=now, settings=settings)
        return {row.id: row for row in rows}


def record(
    settings: Settings,
    batch_id: int,
    claimed: dict[int, Delivery],
    outcomes: list[Outcome],
    now: datetime,
    end_at: datetime | None = None,
) -> None:
    with session_scope(settings.resolved_database_url, write=True) as session:
        ledger.record_outcomes(
            session,
            batch_id=batch_id,
            claimed=claimed,
            outcomes=outcomes,
            now=now,
            settings=settings,
            end_at={row.request_id: end_at for row in claimed.values()},
        )


def retry_all(claimed: dict[int, Delivery], detail: str = "451 try later") -> list[Outcome]:
    return [Outcome(delivery_id, "retry", detail) for delivery_id in claimed]


def lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.lease_seconds)


def test_a_leased_batch_is_nobody_elses_until_its_lease_runs_out(
    settings: Settings, pki: TestPki
) -> None:
    import_request(settings, pki, [ADA, BOB, CAROL])
    now = utcnow()
    [batch] = assign(settings, now)
    assert batch.size == 3
    rows = deliveries(settings)
    assert {r.batch_id for r in rows} == {batch.id}
    assert {r.lease_until for r in rows} == {now + lease(settings)}
    # Another sweeper, a moment before the lease ends: nothing to take.
    assert assign(settings, now + lease(settings) - timedelta(seconds=1)) == []
    claimed = claim(settings, batch.id, now)
    assert sorted(claimed) == [r.id for r in rows]
    assert {r.attempts for r in claimed.values()} == {1}
    # A claim leaves a lease with more than half of it left as it is...
    soon = now + lease(settings) / 4
    assert claim(settings, batch.id, soon) != {}  # a duplicate task of the same batch
    assert {r.lease_until for r in deliveries(settings)} == {now + lease(settings)}
    # ...and renews a shorter one from the claim's own time.
    later = now + lease(settings) * 3 / 4
    assert claim(settings, batch.id, later) != {}
    assert {r.lease_until for r in deliveries(settings)} == {later + lease(settings)}
    assert assign(settings, later + lease(settings) - timedelta(seconds=1)) == []


def test_an_expired_lease_is_assigned_again_and_the_old_batch_owns_nothing(
    settings: Settings, pki: TestPki
) -> None:
    import_request(settings, pki, [ADA, BOB])
    now = utcnow()
    [old] = assign(settings, now)
    claimed = claim(settings, old.id, now)
    # The worker died: after its lease the rows are due again, under a new batch id.
    after = now + lease(settings) + timedelta(seconds=1)
    [new] = assign(settings, after)
    assert new.id != old.id and new.size == 2
    assert claim(settings, old.id, after) == {}  # the dead worker's stale task finds nothing
    # A late outcome of the old batch changes nothing either.
    record(settings, old.id, claimed, [Outcome(i, "submitted") for i in claimed], after)
    assert {r.state for r in deliveries(settings)} == {DeliveryState.QUEUED}
    reclaimed = claim(settings, new.id, after)
    assert {r.attempts for r in reclaimed.values()} == {2}


def test_renewing_the_lease_keeps_a_slow_batch_from_the_sweeper(
    settings: Settings, pki: TestPki
) -> None:
    import_request(settings, pki, [ADA, BOB])
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    renewed_at = now + lease(settings) - timedelta(seconds=1)
    with session_scope(settings.resolved_database_url, write=True) as session:
        renewed = ledger.renew_lease(session, batch_id=batch.id, now=renewed_at, settings=settings)
    assert renewed == 2
    assert {r.lease_until for r in deliveries(settings)} == {renewed_at + lease(settings)}
    assert assign(settings, now + lease(settings) + timedelta(seconds=1)) == []
    record(settings, batch.id, claimed, [Outcome(i, "submitted") for i in claimed], now)
    with session_scope(settings.resolved_database_url, write=True) as session:
        assert ledger.renew_lease(session, batch_id=batch.id, now=now, settings=settings) == 0


def test_priority_batches_first_and_batches_are_at_most_batch_size(
    settings: Settings, pki: TestPki
) -> None:
    small = settings.model_copy(update={"batch_size": 2})
    import_request(small, pki, [ADA, BOB, CAROL], serial="N")
    urgent = import_request(small, pki, [ADA], serial="P", priority=True)
    batches = assign(small, utcnow())
    assert [(b.priority, b.size) for b in batches] == [(True, 1), (False, 2), (False, 1)]
    [first] = [r for r in deliveries(small) if r.batch_id == batches[0].id]
    assert first.request_id == urgent.request_id


def test_a_feed_for_one_request_takes_only_its_rows(settings: Settings, pki: TestPki) -> None:
    first = import_request(settings, pki, [ADA, BOB], serial="A")
    second = import_request(settings, pki, [CAROL], serial="B")
    [batch] = assign(settings, utcnow(), request_id=second.request_id)
    assert batch.size == 1
    owned = [r for r in deliveries(settings) if r.batch_id == batch.id]
    assert [r.request_id for r in owned] == [second.request_id]
    assert all(r.batch_id is None for r in deliveries(settings, first.request_id))


def test_max_batches_limits_one_sweep(settings: Settings, pki: TestPki) -> None:
    small = settings.model_copy(update={"batch_size": 1})
    import_request(small, pki, [ADA, BOB, CAROL])
    assert len(assign(small, utcnow(), max_batches=2)) == 2
    assert len(assign(small, utcnow(), max_batches=2)) == 1


def test_outcomes_are_written_per_row(settings: Settings, pki: TestPki) -> None:
    import_request(settings, pki, [ADA, BOB, CAROL, {"email": "dan@example.com"}])
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    a, b, c, d = sorted(claimed)
    record(
        settings,
        batch.id,
        claimed,
        [
            Outcome(a, DeliveryState.SUBMITTED, None, "msg-1"),
            Outcome(b, DeliveryState.REJECTED, "550 no such user"),
            Outcome(c, DeliveryState.NOT_ATTEMPTED, "channel off"),
            Outcome(d, DeliveryState.UNDELIVERED, "expired"),
        ],
        now,
    )
    rows = {r.id: r for r in deliveries(settings)}
    assert rows[a].state == DeliveryState.SUBMITTED
    assert rows[a].provider_message_id == "msg-1"
    assert rows[a].submitted_at == now and rows[a].finished_at == now
    assert (rows[b].state, rows[b].last_error) == (DeliveryState.REJECTED, "550 no such user")
    assert (rows[c].state, rows[c].last_error) == (DeliveryState.NOT_ATTEMPTED, "channel off")
    assert (rows[d].state, rows[d].last_error) == (DeliveryState.UNDELIVERED, "expired")
    for row in rows.values():
        assert (row.batch_id, row.lease_until, row.attempts) == (None, None, 1)
        assert row.finished_at == now


def test_outcomes_written_as_sql_keep_sqlalchemys_timestamp_form(
    settings: Settings, pki: TestPki
) -> None:
    # A sent row's moments are written by SQL handed to the driver, the others' through
    # SQLAlchemy: on SQLite both must be the same text (ordering and equality compare it).
    import_request(settings, pki, [ADA, BOB])
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    a, b = sorted(claimed)
    outcomes = [
        Outcome(a, DeliveryState.SUBMITTED, None, "msg-1"),
        Outcome(b, DeliveryState.REJECTED, "550 no such user"),
    ]
    record(settings, batch.id, claimed, outcomes, now)
    with session_scope(settings.resolved_database_url) as session:
        rows = session.connection().exec_driver_sql(
            "SELECT submitted_at, finished_at, updated_at, created_at FROM delivery"
        )
        forms = {
            re.sub(r"[0-9]", "0", value) if isinstance(value, str) else type(value)
            for row in rows
            for value in row
            if value is not None
        }
    assert len(forms) == 1, forms


@pytest.mark.parametrize("chunk", [1000, 2])  # 2: the three rows take two statements
def test_a_submission_keeps_the_moment_the_provider_took_it(
    settings: Settings, pki: TestPki, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "_VALUES_ROWS", chunk)
    import_request(settings, pki, [ADA, BOB, CAROL])
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    a, b, c = sorted(claimed)
    took = [now + timedelta(seconds=n) for n in (1, 2)]
    recorded_at = now + timedelta(seconds=5)
    outcomes = [
        Outcome(a, DeliveryState.SUBMITTED, None, "msg-a", at=took[0]),
        Outcome(b, DeliveryState.SUBMITTED, None, None, at=took[1]),
        Outcome(c, DeliveryState.SUBMITTED, None, "msg-c"),  # no moment given: the record's
    ]
    record(settings, batch.id, claimed, outcomes, recorded_at)
    rows = {r.id: r for r in deliveries(settings)}
    assert [rows[i].submitted_at for i in (a, b, c)] == [*took, recorded_at]
    assert [rows[i].provider_message_id for i in (a, b, c)] == ["msg-a", None, "msg-c"]
    assert {(r.state, r.finished_at, r.batch_id) for r in rows.values()} == {
        (DeliveryState.SUBMITTED, recorded_at, None)
    }


def test_a_send_that_left_is_recorded_even_if_the_request_was_cancelled(
    settings: Settings, pki: TestPki
) -> None:
    result = import_request(settings, pki, [ADA, BOB])
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    with session_scope(settings.resolved_database_url, write=True) as session:
        service.cancel_request(session, result.request_id)
    assert {r.state for r in deliveries(settings)} == {DeliveryState.CANCELLED}
    sent, failed = sorted(claimed)
    record(
        settings,
        batch.id,
        claimed,
        [Outcome(sent, DeliveryState.SUBMITTED, None, "m"), Outcome(failed, "retry", "busy")],
        now,
    )
    rows = {r.id: r.state for r in deliveries(settings)}
    assert rows == {sent: DeliveryState.SUBMITTED, failed: DeliveryState.CANCELLED}
    assert assign(settings, now + lease(settings) * 2) == []  # cancelled: nothing is due


def test_a_retry_waits_for_its_backoff(settings: Settings, pki: TestPki) -> None:
    fast = settings.model_copy(update={"retry_base_seconds": 10.0, "retry_max_seconds": 25.0})
    import_request(fast, pki, [ADA])
    now = utcnow()
    expected_ceilings = [10.0, 20.0, 25.0, 25.0]  # base·2^(n-1), capped at the maximum
    for attempt, ceiling in enumerate(expected_ceilings, start=1):
        [batch] = assign(fast, now)
        claimed = claim(fast, batch.id, now)
        record(fast, batch.id, claimed, retry_all(claimed), now)
        [row] = deliveries(fast)
        assert (row.state, row.attempts, row.last_error) == ("queued", attempt, "451 try later")
        assert (row.batch_id, row.lease_until) == (None, None)
        assert row.next_attempt_at is not None
        wait = (row.next_attempt_at - now).total_seconds()
        assert ceiling / 2 <= wait <= ceiling, (attempt, wait)
        assert assign(fast, row.next_attempt_at - timedelta(milliseconds=1)) == []
        now = row.next_attempt_at


def test_gives_up_after_the_configured_retries(settings: Settings, pki: TestPki) -> None:
    few = settings.model_copy(update={"retries": 2, "retry_base_seconds": 0.001})
    import_request(few, pki, [ADA])
    now = utcnow()
    for _ in range(3):
        [batch] = assign(few, now)
        claimed = claim(few, batch.id, now)
        record(few, batch.id, claimed, retry_all(claimed, "421 busy"), now)
        now += timedelta(seconds=1)
    [row] = deliveries(few)
    assert row.state == DeliveryState.UNDELIVERED
    assert row.last_error == "gave up after 3 attempts: 421 busy"
    assert row.finished_at is not None and row.next_attempt_at is None
    assert assign(few, now + timedelta(days=1)) == []


def test_a_retry_after_the_end_time_is_not_made(settings: Settings, pki: TestPki) -> None:
    slow = settings.model_copy(update={"retry_base_seconds": 3600.0, "retry_max_seconds": 7200.0})
    end = utcnow() + timedelta(minutes=10)
    import_request(slow, pki, [ADA], endTimeStamp=int(end.timestamp()))
    now = utcnow()
    [batch] = assign(slow, now)
    claimed = claim(slow, batch.id, now)
    record(slow, batch.id, claimed, retry_all(claimed, "451 later"), now, end_at=end)
    [row] = deliveries(slow)
    assert row.state == DeliveryState.UNDELIVERED
    assert row.last_error == "expired before a retry could be made: 451 later"


def test_a_retry_before_the_end_time_is_queued(settings: Settings, pki: TestPki) -> None:
    end = utcnow() + timedelta(days=1)
    import_request(settings, pki, [ADA], endTimeStamp=int(end.timestamp()))
    now = utcnow()
    [batch] = assign(settings, now)
    claimed = claim(settings, batch.id, now)
    record(settings, batch.id, claimed, retry_all(claimed), now, end_at=end)
    assert deliveries(settings)[0].state == DeliveryState.QUEUED


def test_overdue_deliveries_expire_but_not_while_leased(settings: Settings, pki: TestPki) -> None:
    end = utcnow() + timedelta(seconds=30)
    leased = import_request(settings, pki, [ADA], serial="A", endTimeStamp=int(end.timestamp()))
    idle = import_request(settings, pki, [BOB], serial="B", endTimeStamp=int(end.timestamp()))
    endless = import_request(settings, pki, [CAROL], serial="C")
    now = utcnow()
    assign(settings, now, request_id=leased.request_id)
    with session_scope(settings.resolved_database_url, write=True) as session:
        assert ledger.expire_overdue(session, now=end + timedelta(seconds=1)) == 1
    [expired] = deliveries(settings, idle.request_id)
    assert expired.state == DeliveryState.UNDELIVERED
    assert expired.last_error == "expired: endTimeStamp passed before it could be sent"
    assert deliveries(settings, leased.request_id)[0].state == DeliveryState.QUEUED
    assert deliveries(settings, endless.request_id)[0].state == DeliveryState.QUEUED
    # Once its lease is gone, the leased one expires too.
    with session_scope(settings.resolved_database_url, write=True) as session:
        assert ledger.expire_overdue(session, now=now + lease(settings) * 2) == 1
    assert deliveries(settings, leased.request_id)[0].state == DeliveryState.UNDELIVERED


@pytest.mark.parametrize("attempts", [1, 2, 5, 30])
def test_backoff_stays_within_half_and_all_of_its_ceiling(attempts: int) -> None:
    settings = Settings(retry_base_seconds=2.0, retry_max_seconds=600.0)
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    waits = [ledger.backoff_seconds(attempts, settings) for _ in range(200)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 1  # jittered
