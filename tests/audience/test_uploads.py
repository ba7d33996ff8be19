"""A queued import outlives a worker that dies mid-import: its lease expires, it runs again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from passpost.audience import uploads
from passpost.audience.models import Recipient, UploadBatch
from passpost.audience.tasks import import_upload
from passpost.config import get_settings
from passpost.db import session_scope, utcnow

CSV = b"email,firstName\na@example.com,A\nb@example.com,B\n"


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str) -> Iterator[str]:
    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url


def test_dead_worker_batch_is_found_again(url: str) -> None:
    with session_scope(url, write=True) as session:
        batch_id = uploads.create_batch(session, data=CSV, file_name="a.csv", imported_by="ops").id
    now = utcnow()
    # A worker leases the batch and dies before its import transaction commits.
    with session_scope(url, write=True) as session:
        assert uploads.claim(session, batch_id, now=now, lease=60) is not None
    with session_scope(url) as session:
        assert uploads.stale(session, now=now + timedelta(seconds=120), older_than=0) == [batch_id]
        # While the lease runs nobody else takes it.
        assert uploads.stale(session, now=now + timedelta(seconds=30), older_than=0) == []
        assert uploads.claim(session, batch_id, now=now + timedelta(seconds=30), lease=60) is None
    with session_scope(url, write=True) as session:
        row = session.get(UploadBatch, batch_id)
        assert row is not None
        row.lease_until = now - timedelta(seconds=1)  # the lease ran out
    import_upload(batch_id)
    with session_scope(url) as session:
        row = session.get(UploadBatch, batch_id)
        assert row is not None and row.state == uploads.DONE and row.content is None
        assert (row.total, row.created, row.attempts) == (2, 2, 2)
        assert session.query(Recipient).count() == 2
    import_upload(batch_id)  # a duplicate task does nothing
    with session_scope(url) as session:
        assert session.query(Recipient).count() == 2
