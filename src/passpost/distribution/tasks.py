"""Queue tasks of the distribution domain: feed batches, send them, sweep for lost work."""

from __future__ import annotations

import logging
import threading

from passpost.config import Settings, get_settings
from passpost.db import session_scope, utcnow
from passpost.distribution import ledger, tally
from passpost.distribution.models import Channel, DeliveryState
from passpost.distribution.sending import Plan, execute_plan, plan_batch
from passpost.distribution.service import apply_early_receipts
from passpost.metrics import DELIVERY_OUTCOMES, RETRIES, SENDS
from passpost.queue import PRIORITY_HIGH, PRIORITY_NORMAL, enqueue, task

log = logging.getLogger(__name__)


# How many batches to keep queued ahead per feed: enough to keep every worker busy,
# few enough that priority work queued later still overtakes.
def _ahead(settings: Settings) -> int:
    return max(2, settings.workers * 2)


def _enqueue_batches(batches: list[ledger.Batch]) -> None:
    for batch in batches:
        enqueue(send_batch, batch.id, priority=PRIORITY_HIGH if batch.priority else PRIORITY_NORMAL)


def _assign(settings: Settings, request_id: int | None) -> list[ledger.Batch]:
    """Batches of one request's due rows, or (``None``) of every request's, priority first."""
    with session_scope(settings.resolved_database_url, write=True) as session:
        return ledger.assign_batches(
            session,
            now=utcnow(),
            settings=settings,
            max_batches=_ahead(settings),
            request_id=request_id,
        )


def _start(batches: list[ledger.Batch]) -> None:
    """Queue the batches but the first, and send that one here and now.

    Waiting for a worker to dequeue the first batch would add a queue round trip before
    the first message leaves; the others are queued first, so idle workers start on them
    meanwhile. Priority batches come first (``assign_batches`` orders them so).
    """
    if not batches:
        return
    if not batches[0].priority:
        waiting = _priority_waiting()
        if waiting is ledger.PriorityWaiting.UNTAKEN:
            # Priority deliveries are due that no task holds (their own dispatch may still
            # be on its way to the queue, which is fed after the import answered): they are
            # taken now and go first; this request's batches follow through the queue.
            batches = _assign(get_settings(), None) + batches
        elif waiting is ledger.PriorityWaiting.TAKEN:
            # Another batch holds them (queued at high priority by a sweep or a dispatch, or
            # being sent): this request's batches wait their turn in the queue.
            _enqueue_batches(batches)
            return
    # Queued from a helper thread while the first batch is claimed and sent: on SQLite
    # each queue write is a transaction of its own, and the first message should not wait
    # for them.
    feeder = threading.Thread(target=_enqueue_batches, args=(batches[1:],), daemon=True)
    feeder.start()
    try:
        send_batch(batches[0].id)
    finally:
        feeder.join()


def feed_request(request_id: int) -> None:
    """Queue a request's next batches for any worker (sends nothing here)."""
    _enqueue_batches(_assign(get_settings(), request_id))


def _send_first_batch_soon(request_id: int) -> None:
    """``dispatch_request`` in a thread of its own; a failure is logged, and the rows it
    leased come back to the sweeper when the lease runs out."""

    def run() -> None:
        try:
            dispatch_request(request_id)
        except Exception:  # a thread's last stop: logged here
            log.exception("the first sends of request %s failed", request_id)

    threading.Thread(target=run, name=f"passpost-first-{request_id}", daemon=True).start()


def _priority_waiting() -> ledger.PriorityWaiting:
    """Whether priority deliveries are due, and whether a batch holds them."""
    settings = get_settings()
    with session_scope(settings.resolved_database_url) as session:
        return ledger.priority_waiting(session, now=utcnow())


@task
def dispatch_request(request_id: int) -> None:
    """Start (or continue) sending a request: send its first batch, queue the next ones."""
    _start(_assign(get_settings(), request_id))


@task
def dispatch_requests(request_ids: list[int]) -> None:
    """``dispatch_request`` for several requests (imports queued together): one batch is
    sent here, every other one is queued."""
    settings = get_settings()
    batches = [batch for request_id in request_ids for batch in _assign(settings, request_id)]
    batches.sort(key=lambda batch: not batch.priority)
    _start(batches)


@task
def send_batch(batch_id: int) -> None:
    """Claim a batch's deliveries, send them concurrently, record every outcome, feed more."""
    try:
        _send_batch(batch_id)
    except Exception as exc:
        # One line naming the batch and the reason; its rows stay leased and are picked up
        # again when the lease runs out. The traceback follows (inside the line in JSON).
        log.exception("batch %s failed: %r", batch_id, exc, extra={"batch_id": batch_id})
        raise


def _send_batch(batch_id: int) -> None:
    settings = get_settings()
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        deliveries = ledger.claim(session, batch_id=batch_id, now=utcnow(), settings=settings)
        if not deliveries:
            return
        request_ids = {d.request_id for d in deliveries}
        plan = plan_batch(session, deliveries=deliveries, settings=settings)

    # The claim (and its lease) is committed before anything is sent.
    def heartbeat() -> None:
        with session_scope(url, write=True) as session:
            ledger.renew_lease(session, batch_id=batch_id, now=utcnow(), settings=settings)

    outcomes = execute_plan(plan, heartbeat=heartbeat, every=settings.lease_seconds / 3)
    with session_scope(url, write=True) as session:
        recorded = ledger.record_outcomes(
            session,
            batch_id=batch_id,
            claimed={d.id: d for d in deliveries},
            outcomes=outcomes,
            now=utcnow(),
            settings=settings,
            end_at=plan.end_at,
        )
        apply_early_receipts(session, _receiptable(outcomes, deliveries))
    _report(plan, recorded)
    for request_id in request_ids:
        with session_scope(url, write=True) as session:
            batches = ledger.assign_batches(
                session, now=utcnow(), settings=settings, max_batches=1, request_id=request_id
            )
        _enqueue_batches(batches)


def _receiptable(outcomes: list[ledger.Outcome], deliveries: list[ledger.Claimed]) -> list[str]:
    """The message ids a delivery receipt may already be waiting for: SMS only (no e-mail
    channel reports delivery; looking their ids up cost a query of hundreds per batch)."""
    sms = {d.id for d in deliveries if d.channel == Channel.SMS}
    return [
        o.provider_message_id for o in outcomes if o.provider_message_id and o.delivery_id in sms
    ]


_FAILED = (DeliveryState.REJECTED, DeliveryState.UNDELIVERED, ledger.RETRY)


def _report(plan: Plan, recorded: list[ledger.Recorded]) -> None:
    """Count what a batch did, and log each failed delivery in one line with its reason."""
    SENDS.labels(Channel.EMAIL).inc(len(plan.email))
    SENDS.labels(Channel.SMS).inc(len(plan.sms))
    for row in recorded:
        DELIVERY_OUTCOMES.labels(row.channel, row.state).inc()
        if row.state == ledger.RETRY:
            RETRIES.labels(row.channel).inc()
        if row.state in _FAILED:
            level = logging.INFO if row.state == ledger.RETRY else logging.WARNING
            log.log(
                level,
                "delivery %s %s %s after %d attempt(s): %s",
                row.delivery_id,
                row.channel,
                row.state,
                row.attempts,
                row.detail,
                extra={
                    "delivery_id": row.delivery_id,
                    "channel": row.channel,
                    "state": row.state,
                    "attempts": row.attempts,
                    "reason": row.detail,
                },
            )


@task
def expand_recipients(request_id: int) -> None:
    """Expand a large request's stored recipient list into the ledger, chunk by chunk,
    starting the sends' feed whenever it stopped (``distribution.expansion``)."""
    from passpost.distribution import expansion

    settings = get_settings()
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        if expansion.waits_for_earlier(session, request_id=request_id):
            return  # the sweeper queues it again
        owner = expansion.claim(session, request_id=request_id, settings=settings)
    if owner is None:
        return  # done, or another task holds it
    with session_scope(url) as session:
        run = expansion.start(session, request_id=request_id, owner=owner, settings=settings)
    try:
        fed = 0
        while True:
            # Read and built before the write transaction: other writers wait only for
            # the chunk's inserts (on SQLite they queue at a fair gate, see db.py).
            with session_scope(url) as session:
                batch = expansion.prepare(session, run=run)
            with session_scope(url, write=True) as session:
                step = expansion.expand_next(session, run=run, batch=batch, settings=settings)
            if fed == 0 and step.holders:
                # The sends start with the first chunk, sent from a thread of its own: a
                # queue round trip later would delay the first message, and sending here
                # would hold up the expansion for a batch.
                _send_first_batch_soon(request_id)
            elif step.holders or step.finished:
                with session_scope(url) as session:
                    stopped = expansion.feed_stopped(session, request_id=request_id)
                if stopped:
                    feed_request(request_id)
            fed += int(bool(step.holders))
            if step.finished:
                return
    except expansion.LostLease as exc:
        log.warning("%s", exc)
    except Exception as exc:
        log.exception("expanding request %s failed: %r", request_id, exc)
        with session_scope(url, write=True) as session:
            expansion.release(session, run=run, error=repr(exc)[:1000])
        raise


@task
def apply_pass_changes(job_id: int) -> None:
    """Apply a request-wide pass change chunk by chunk, pushing each chunk's passes."""
    from passpost.distribution import jobs
    from passpost.passkit.tasks import push_pass_update

    settings = get_settings()
    while True:
        with session_scope(settings.resolved_database_url, write=True) as session:
            result = jobs.run_chunk(session, settings=settings, job_id=job_id)
        for pass_id in result.pass_ids:
            enqueue(push_pass_update, pass_id, priority=PRIORITY_HIGH)
        for request_id in result.notified:
            jobs.dispatch(request_id)
        if result.finished:
            return


def sweep(settings: Settings) -> int:
    """Expire overdue work and re-queue due deliveries and pushes; returns batches queued."""
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        now = utcnow()
        expired = ledger.expire_overdue(session, now=now)
        apply_early_receipts(session, None)
        # PostgreSQL's tally deltas, folded even when nobody looks at the status pages.
        tally.fold(session)
        batches = ledger.assign_batches(
            session, now=now, settings=settings, max_batches=_ahead(settings)
        )
    if expired:
        log.info("expired %d deliveries past their endTimeStamp", expired)
    _enqueue_batches(batches)
    _sweep_pushes(url)
    _sweep_change_jobs(settings)
    _sweep_expansions(url)
    return len(batches)


def _sweep_expansions(url: str) -> None:
    from passpost.distribution import expansion

    with session_scope(url) as session:
        stalled = expansion.stalled(session)
    for request_id in stalled:
        enqueue(expand_recipients, request_id)


def _sweep_change_jobs(settings: Settings) -> None:
    from passpost.distribution import jobs

    with session_scope(settings.resolved_database_url) as session:
        stalled = jobs.stalled_jobs(session, settings=settings)
    for job_id in stalled:
        log.info("pass change %s stopped moving; queueing it again", job_id)
        enqueue(apply_pass_changes, job_id)


def _sweep_pushes(url: str) -> None:
    from passpost.passkit import service as passkit_service
    from passpost.passkit.tasks import push_pass_update

    with session_scope(url, write=True) as session:
        pass_ids = passkit_service.requeue_due_pushes(session)
    for pass_id in pass_ids:
        enqueue(push_pass_update, pass_id)
