"""The process's Prometheus instruments (``prometheus-client``), counted where things happen.

These counters and histograms live in the memory of the process that counts them: an API
process counts its HTTP requests and device registrations, a worker its sends, retries
and APNs results (``passpost serve`` does both). Scrape every process and add them up
with ``sum()``. What is shared by the whole cluster — deliveries by state, queue depth,
registrations — is read from the database and the queue at scrape time instead (see
``passpost.web.metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "passpost_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REQUESTS = Counter(
    "passpost_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
SENDS = Counter(
    "passpost_sends",
    "Messages handed to a channel (each attempt), by channel; rate() gives sends per second.",
    ["channel"],
)
DELIVERY_OUTCOMES = Counter(
    "passpost_delivery_outcomes",
    "Outcomes written to the ledger by this worker, by channel and new state "
    "(retry: queued again with backoff).",
    ["channel", "state"],
)
RETRIES = Counter(
    "passpost_delivery_retries",
    "Deliveries queued again after a transient failure, by channel.",
    ["channel"],
)
APNS_PUSHES = Counter(
    "passpost_apns_pushes",
    "APNs pushes by final outcome (ok, unregistered, permanent, transient) and HTTP status.",
    ["outcome", "status"],
)
DEVICE_REGISTRATIONS = Counter(
    "passpost_device_registrations",
    "PassKit device registration calls, by action (registered, already_registered, unregistered).",
    ["action"],
)
