"""After the commit: the queue is fed off the request path, imports waiting together in one
queue write, to the queue configured when the request was answered."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from passpost.config import get_settings
from passpost.db import utcnow
from passpost.distribution.service import ImportResult
from passpost.distribution.submit import _queue, _Queued, queue_import_soon
from passpost.queue import PRIORITY_HIGH, PRIORITY_NORMAL, get_huey


def _result(request_id: int, *, pass_id: int = 1, version: int = 1) -> ImportResult:
    return ImportResult(request_id, pass_id, version, False)


def test_waiting_imports_share_one_dispatch_task_per_priority(settings_env: Path) -> None:
    url = get_settings().resolved_queue_url
    later = utcnow() + timedelta(hours=1)
    _queue(
        [
            _Queued(_result(1), False, None, url),
            _Queued(_result(2, version=2), False, None, url),
            _Queued(_result(3, version=3), False, None, url),  # the same pass: one push task
            _Queued(_result(4, pass_id=7), True, None, url),
            _Queued(_result(5, pass_id=8), False, later, url),
        ]
    )
    pending = {
        (t.name, str(t.args), t.priority, t.eta is not None) for t in get_huey(url).pending()
    }
    assert pending == {
        ("dispatch_requests", str(([1, 2, 3],)), PRIORITY_NORMAL, False),
        ("dispatch_request", str((4,)), PRIORITY_HIGH, False),
        ("push_pass_update", str((1,)), PRIORITY_HIGH, False),
        ("dispatch_request", str((5,)), PRIORITY_NORMAL, True),  # not before its start
    }


def test_the_feeder_queues_to_the_queue_configured_when_called(
    settings_env: Path, tmp_path: Path
) -> None:
    url = get_settings().resolved_queue_url
    queue_import_soon(_result(11), priority=False, start_at=None)
    # Settings changing right after (another test, a reload) must not redirect the work.
    get_settings.cache_clear()
    os.environ["PASSPOST_DATA_DIR"] = str(tmp_path / "elsewhere")
    try:
        deadline = time.monotonic() + 10
        huey = get_huey(url)
        while not huey.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(t.name, t.args) for t in huey.pending()] == [("dispatch_request", (11,))]
    finally:
        os.environ["PASSPOST_DATA_DIR"] = str(settings_env)
        get_settings.cache_clear()
