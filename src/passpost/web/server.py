"""Running passpost: the API alone, or the API with an embedded worker pool (``serve``)."""

from __future__ import annotations

import logging

import uvicorn

from passpost.config import Settings
from passpost.db import migrate
from passpost.queue import get_huey
from passpost.web.access_log import install_access_log_redaction
from passpost.web.app import create_app

log = logging.getLogger(__name__)


def run_server(settings: Settings, *, host: str, port: int, with_worker: bool) -> None:
    """Migrate the database, then serve the HTTP API (and the worker pool, if asked)."""
    migrate(settings.resolved_database_url)
    get_huey(settings.resolved_queue_url)  # creates the queue's tables before /ready is asked
    worker = None
    if with_worker:
        from passpost.worker import EmbeddedWorker

        worker = EmbeddedWorker(settings)
        worker.start()
    config = uvicorn.Config(
        create_app(),
        host=host,
        port=port,
        log_config=None,  # uvicorn's lines go through passpost's handler (passpost.logs)
        proxy_headers=True,
        # X-Forwarded-For / -Proto are believed only from these peers (rate limits count
        # by the address they yield).
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
    )
    install_access_log_redaction()
    try:
        uvicorn.Server(config).run()
    finally:
        if worker is not None:
            worker.stop()
