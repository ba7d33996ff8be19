"""The worker: huey consumer threads plus a sweeper that finds due and lost work in the ledger."""

from __future__ import annotations

import logging
import threading

from huey.consumer import Consumer

from passpost.audience import tasks as audience_tasks
from passpost.config import Settings
from passpost.distribution import tasks as distribution_tasks
from passpost.distribution.runtime import shutdown_runtime
from passpost.passkit import tasks as passkit_tasks
from passpost.queue import get_huey

log = logging.getLogger(__name__)

# Importing a task module registers its tasks; a consumer must know every one of them.
TASK_MODULES = (distribution_tasks, passkit_tasks, audience_tasks)


class Sweeper(threading.Thread):
    """Every ``sweep_seconds``: expire overdue work, re-queue due retries and expired leases."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="passpost-sweeper", daemon=True)
        self._settings = settings
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                distribution_tasks.sweep(self._settings)
                audience_tasks.requeue_stale_uploads(self._settings)
            except Exception:
                log.exception("sweep failed; retrying in %ss", self._settings.sweep_seconds)
            self._stop_event.wait(self._settings.sweep_seconds)

    def stop(self) -> None:
        self._stop_event.set()


class _EmbeddedConsumer(Consumer):
    """A consumer that leaves signal handling to the process it is embedded in (uvicorn)."""

    def _set_signal_handlers(self) -> None:
        return None


def make_consumer(settings: Settings, *, embedded: bool) -> Consumer:
    """A huey consumer with ``settings.workers`` threads on the configured queue."""
    cls = _EmbeddedConsumer if embedded else Consumer
    return cls(
        get_huey(settings.resolved_queue_url),
        workers=settings.workers,
        worker_type="thread",
        periodic=False,
        # An idle worker thread looks at the queue at least every 0.1 s (a cheap read on
        # SQL queues): new work starts within ~25 ms on average with the default 4 threads.
        initial_delay=0.05,
        max_delay=0.1,
        backoff=1.5,
        check_worker_health=True,
    )


class EmbeddedWorker:
    """The worker pool inside ``passpost serve``: start with the app, stop with it."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = make_consumer(settings, embedded=True)
        self._sweeper = Sweeper(settings)

    def start(self) -> None:
        self._consumer.start()
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        self._consumer.stop(graceful=True)
        shutdown_runtime()


def run_worker(settings: Settings) -> None:
    """Run a standalone worker until interrupted (``passpost worker``)."""
    consumer = make_consumer(settings, embedded=False)
    sweeper = Sweeper(settings)
    sweeper.start()
    try:
        consumer.run()
    finally:
        sweeper.stop()
        shutdown_runtime()
