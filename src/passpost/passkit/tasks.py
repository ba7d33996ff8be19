"""Queue tasks of the PassKit domain: APNs pushes for pass updates."""

from __future__ import annotations

import asyncio
from datetime import datetime

from passpost.config import get_settings
from passpost.db import session_scope
from passpost.passkit import pushes
from passpost.queue import PRIORITY_NORMAL, enqueue, task


@task
def push_pass_update(pass_id: int) -> None:
    """Send the pass's due pushes, record each result, and re-enqueue what must be retried."""
    settings = get_settings()
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        batch = pushes.claim(session, pass_id=pass_id, settings=settings)
        sender = pushes.sender_for(session, batch=batch, settings=settings) if batch else None
    if not batch:
        return
    outcomes = asyncio.run(pushes.send(batch, sender=sender, settings=settings))
    with session_scope(url, write=True) as session:
        retry_at: datetime | None = pushes.record(session, outcomes=outcomes, settings=settings)
    if batch.more:
        enqueue(push_pass_update, pass_id, priority=PRIORITY_NORMAL)
    elif retry_at is not None:
        enqueue(push_pass_update, pass_id, priority=PRIORITY_NORMAL, eta=retry_at)
