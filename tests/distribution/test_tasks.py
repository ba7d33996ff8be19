"""The distribution queue tasks in-process against the suite's SMTP peer (SQLite, PostgreSQL).

The task functions are called directly; what they put on the queue is read back from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from passpost.config import Settings, get_settings
from passpost.db import session_scope, utcnow
from passpost.distribution import ledger, tasks
from passpost.distribution.models import Delivery, DeliveryState
from passpost.distribution.runtime import shutdown_runtime
from passpost.queue import get_huey
from tests.support.ledger import deliveries, import_request
from tests.support.passes import TestPki
from tests.support.smtp import SmtpServer, body_text


@pytest.fixture
def worker_settings(
    settings: Settings, smtp_peer: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings of a worker sending through ``smtp_peer``; its channel runtime is shut after."""
    monkeypatch.setenv("PASSPOST_SMTP_URL", smtp_peer.url)
    monkeypatch.setenv("PASSPOST_RETRY_BASE_SECONDS", "60")
    get_settings.cache_clear()
    yield get_settings()
    shutdown_runtime()


def queued_batches() -> list[int]:
    """The batch ids of the ``send_batch`` calls waiting on the queue (and take them off)."""
    huey = get_huey()
    found = [task.args[0] for task in huey.pending() if task.name == "send_batch"]
    huey.flush()
    return found


def test_dispatch_then_send_delivers_each_recipients_own_link(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    result = import_request(
        worker_settings,
        pki,
        [{"email": "ada@example.com", "firstName": "Ada"}, {"email": "bob@example.com"}],
    )
    tasks.dispatch_request(result.request_id)  # sends the first batch itself
    assert queued_batches() == []  # it was the only one
    rows = deliveries(worker_settings)
    assert {(r.state, r.attempts) for r in rows} == {(DeliveryState.SUBMITTED, 1)}
    assert all(r.provider_message_id for r in rows)
    [ada] = smtp_peer.handler.to("ada@example.com")
    [bob] = smtp_peer.handler.to("bob@example.com")
    assert "Hello Ada" in body_text(ada)
    links = [body_text(m).split("/p/")[1].split("'")[0].split('"')[0][:20] for m in (ada, bob)]
    assert links[0] != links[1]
    assert queued_batches() == []  # nothing left to feed
    tasks.dispatch_request(result.request_id)  # a duplicate of the task finds nothing to send
    assert len(smtp_peer.handler.messages) == 2


def test_a_temporary_failure_is_retried_by_the_sweeper(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    import_request(worker_settings, pki, [{"email": "tempfail1-ada@example.com"}])
    assert tasks.sweep(worker_settings) == 1
    [batch_id] = queued_batches()
    tasks.send_batch(batch_id)
    [row] = deliveries(worker_settings)
    assert (row.state, row.attempts) == (DeliveryState.QUEUED, 1)
    assert row.last_error is not None and row.last_error.startswith("451")
    assert tasks.sweep(worker_settings) == 0  # waiting for its backoff
    with session_scope(worker_settings.resolved_database_url) as session:
        session.execute(update(Delivery).values(next_attempt_at=utcnow()))
    assert tasks.sweep(worker_settings) == 1
    [retry] = queued_batches()
    tasks.send_batch(retry)
    [row] = deliveries(worker_settings)
    assert (row.state, row.attempts, row.last_error) == (DeliveryState.SUBMITTED, 2, None)
    assert smtp_peer.handler.rcpt_attempts["tempfail1-ada@example.com"] == 2


def test_a_permanent_refusal_is_rejected_at_once(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    import_request(worker_settings, pki, [{"email": "reject-ada@example.com"}])
    tasks.sweep(worker_settings)
    [batch_id] = queued_batches()
    tasks.send_batch(batch_id)
    [row] = deliveries(worker_settings)
    assert row.state == DeliveryState.REJECTED
    assert row.last_error is not None and row.last_error.startswith("550")


def test_the_sweeper_takes_over_a_dead_workers_batch(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    import_request(worker_settings, pki, [{"email": "ada@example.com"}])
    # A worker claimed the batch and died before sending.
    with session_scope(worker_settings.resolved_database_url, write=True) as session:
        [dead] = ledger.assign_batches(
            session, now=utcnow(), settings=worker_settings, max_batches=1
        )
    with session_scope(worker_settings.resolved_database_url, write=True) as session:
        ledger.claim(session, batch_id=dead.id, now=utcnow(), settings=worker_settings)
    assert tasks.sweep(worker_settings) == 0  # its lease still holds
    with session_scope(worker_settings.resolved_database_url) as session:
        session.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert tasks.sweep(worker_settings) == 1
    [batch_id] = queued_batches()
    assert batch_id != dead.id
    tasks.send_batch(dead.id)  # the dead worker's task, re-delivered by the queue: nothing
    assert smtp_peer.handler.messages == []
    tasks.send_batch(batch_id)
    [row] = deliveries(worker_settings)
    assert (row.state, row.attempts) == (DeliveryState.SUBMITTED, 2)
    assert len(smtp_peer.handler.messages) == 1


def test_the_heartbeat_keeps_a_slow_batch_from_the_sweeper(
    worker_settings: Settings,
    pki: TestPki,
    smtp_peer: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A send that outlasts the lease is not taken for a dead worker's: the lease is renewed."""
    monkeypatch.setenv("PASSPOST_LEASE_SECONDS", "3")
    get_settings.cache_clear()
    short = get_settings()
    import_request(short, pki, [{"email": "slow6000-ada@example.com"}])
    with session_scope(short.resolved_database_url, write=True) as session:
        [batch] = ledger.assign_batches(session, now=utcnow(), settings=short, max_batches=1)
    sender = threading.Thread(target=tasks.send_batch, args=(batch.id,))
    sender.start()
    try:
        deadline = time.monotonic() + 5  # the send takes 6 s; the lease is 3 s
        while time.monotonic() < deadline:
            with session_scope(short.resolved_database_url, write=True) as session:
                stolen = ledger.assign_batches(session, now=utcnow(), settings=short, max_batches=1)
            assert stolen == [], "the sweeper took a batch that was still being sent"
            time.sleep(0.2)
    finally:
        sender.join(30)
    [row] = deliveries(short)
    assert (row.state, row.attempts) == (DeliveryState.SUBMITTED, 1)
    assert len(smtp_peer.handler.messages) == 1


def test_dispatch_sends_the_first_batch_and_queues_the_rest(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSPOST_BATCH_SIZE", "2")
    get_settings.cache_clear()
    people = [{"email": f"r{n}@example.com"} for n in range(5)]
    result = import_request(get_settings(), pki, people)
    tasks.dispatch_request(result.request_id)
    assert len(smtp_peer.handler.messages) == 2  # the first batch, sent by the dispatch itself
    queued = queued_batches()
    assert len(queued) == 2  # the other three recipients, waiting for any worker
    for batch_id in queued:
        tasks.send_batch(batch_id)
    assert {r.state for r in deliveries(get_settings())} == {DeliveryState.SUBMITTED}
    for person in people:
        assert len(smtp_peer.handler.to(person["email"])) == 1


def test_a_normal_dispatch_sends_waiting_priority_work_first(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    bulk = import_request(worker_settings, pki, [{"email": "bulk@example.com"}], serial="B")
    import_request(
        worker_settings, pki, [{"email": "urgent@example.com"}], serial="U", priority=True
    )
    # The normal request's dispatch runs before the priority one's reached the queue: it
    # sends the priority request's batch itself and queues its own.
    tasks.dispatch_request(bulk.request_id)
    assert [m["To"] for m in smtp_peer.handler.messages] == ["urgent@example.com"]
    [batch_id] = queued_batches()
    tasks.send_batch(batch_id)
    assert len(smtp_peer.handler.to("bulk@example.com")) == 1


def test_only_sms_outcomes_are_looked_up_for_receipts_that_came_early() -> None:
    # E-mail has no delivery receipts: its message ids are never looked up among the
    # parked ones (a query of hundreds of ids per batch for nothing).
    claimed = [ledger.Claimed(1, 9, 1, "EMAIL", 1), ledger.Claimed(2, 9, 2, "SMS", 1)]
    outcomes = [
        ledger.Outcome(1, DeliveryState.SUBMITTED, None, "<delivery-1@passpost>"),
        ledger.Outcome(2, DeliveryState.SUBMITTED, None, "smsc-2"),
    ]
    assert tasks._receiptable(outcomes, claimed) == ["smsc-2"]


def test_a_normal_dispatch_waits_for_priority_work_a_batch_already_holds(
    worker_settings: Settings, pki: TestPki, smtp_peer: SmtpServer
) -> None:
    bulk = import_request(worker_settings, pki, [{"email": "bulk@example.com"}], serial="B")
    urgent = import_request(
        worker_settings, pki, [{"email": "urgent@example.com"}], serial="U", priority=True
    )
    # A sweep (a worker starting) took the priority row into a batch and has not queued it
    # yet when the normal request's dispatch runs: that dispatch sends nothing itself.
    [held] = tasks._assign(worker_settings, urgent.request_id)
    tasks.dispatch_request(bulk.request_id)
    assert smtp_peer.handler.messages == []
    [bulk_batch] = queued_batches()
    tasks.send_batch(held.id)
    tasks.send_batch(bulk_batch)
    assert [m["To"] for m in smtp_peer.handler.messages] == [
        "urgent@example.com",
        "bulk@example.com",
    ]
