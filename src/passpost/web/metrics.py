"""``GET /metrics`` (operators only) and the HTTP latency middleware.

Two kinds of series (README, "Metrics"): this process's own counters and histograms
(``passpost.metrics``, the default ``prometheus_client`` registry, plus its process_* and
python_* collectors), and cluster-wide gauges read from the ledger and the queue at scrape
time (deliveries by channel and state, queue depth per priority, registrations...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passpost.auth.deps import OperatorDep
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution.models import Delivery, DistributionRequest
from passpost.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from passpost.passes.models import WalletPass
from passpost.passkit.models import Registration
from passpost.queue import queue_depth

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])

UNMATCHED = "<unmatched>"


class HttpMetricsMiddleware:
    """Time every HTTP request, labelled by the route template (``/api/v1/pass/{passId}/status``),
    never the raw path, so that ids do not become series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router has written the matched route into the (shared) scope by now.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            HTTP_REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()


class LedgerCollector(Collector):
    """Cluster-wide gauges, read from the database and the queue when scraped."""

    def __init__(self, session: Session, queue_url: str) -> None:
        self._session = session
        self._queue_url = queue_url

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield self._deliveries()
        yield from self._queue()
        yield from self._counts()

    def _deliveries(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "passpost_deliveries",
            "Deliveries in the ledger by channel and state (whole cluster).",
            labels=["channel", "state"],
        )
        query = select(Delivery.channel, Delivery.state, func.count()).group_by(
            Delivery.channel, Delivery.state
        )
        for channel, state, count in self._session.execute(query):
            family.add_metric([channel, state], count)
        return family

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("passpost_queue_up", "1 when the queue answered this scrape.")
        depth = GaugeMetricFamily(
            "passpost_queue_tasks",
            "Tasks waiting in the queue, by priority (high = priority requests).",
            labels=["priority"],
        )
        try:
            counts = queue_depth(self._queue_url)
        except Exception as exc:  # noqa: BLE001 - sqlite3, psycopg and redis each raise their own
            log.warning("metrics: queue depth unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for priority, count in counts.items():
            depth.add_metric([priority], count)
        yield up
        yield depth

    def _counts(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        requests = self._session.scalar(select(func.count()).select_from(DistributionRequest))
        yield CounterMetricFamily(
            "passpost_requests", "Distribution requests ever accepted.", value=requests or 0
        )
        for name, documentation, model in (
            ("passpost_passes", "Passes stored.", WalletPass),
            ("passpost_registrations", "PassKit device registrations stored.", Registration),
        ):
            family = GaugeMetricFamily(name, documentation)
            count = self._session.scalar(select(func.count()).select_from(model))
            family.add_metric([], count or 0)
            yield family


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep, settings: SettingsDep, _: OperatorDep) -> Response:
    """This process's counters and histograms, then the cluster's ledger and queue gauges."""
    ledger = CollectorRegistry(auto_describe=False)
    ledger.register(LedgerCollector(session, settings.resolved_queue_url))
    body = generate_latest(REGISTRY) + generate_latest(ledger)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
