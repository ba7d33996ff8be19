"""``/ready``: database, migrations and queue checked; a stopped PostgreSQL shows at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from passpost.config import get_settings
from passpost.db import head_revisions
from passpost.queue import get_huey
from passpost.web.app import create_app
from tests.support import pg_cluster
from tests.support.net import free_port
from tests.support.service import Process, base_env


def _client(monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    for key, value in env.items():
        monkeypatch.setenv(f"PASSPOST_{key}", value)
    get_settings.cache_clear()
    return TestClient(create_app())


def test_ready_when_everything_answers(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> None:
    client = _client(monkeypatch, DATABASE_URL=database_url)
    get_huey(get_settings().resolved_queue_url)  # what `passpost api` does at start
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["database"] == "ok"
    assert body["migrations"] == ",".join(sorted(head_revisions()))
    assert body["queue"].startswith("ok")
    assert client.get("/health").json()["status"] == "ok"


def test_not_migrated_database_is_not_ready(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, tmp_path: Path
) -> None:
    client = _client(monkeypatch, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    get_huey(get_settings().resolved_queue_url)
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["errorCode"] == "NOT_READY" and body["id"] == "-1"
    assert "database not migrated" in body["message"]


def test_unreachable_queue_is_not_ready(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = _client(monkeypatch, DATABASE_URL=database_url, QUEUE_URL=dead)
    started = time.monotonic()
    response = client.get("/ready")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["message"] == "Not ready: queue unreachable (ConnectionError)."


@pytest.fixture
def cluster() -> Iterator[pg_cluster.Cluster]:
    if not pg_cluster.available():
        pytest.skip("initdb/pg_ctl not installed")
    own = pg_cluster.Cluster().init()
    try:
        yield own
    finally:
        own.destroy()


@pytest.mark.slow
def test_ready_reflects_a_stopped_postgresql_within_a_second(
    tmp_path: Path, cluster: pg_cluster.Cluster
) -> None:
    env = base_env(tmp_path / "data", PASSPOST_DATABASE_URL=cluster.url)
    with Process(env, "api") as api:
        assert httpx.get(api.url + "/ready").status_code == 200
        cluster.stop("fast")
        stopped = time.monotonic()
        response = httpx.get(api.url + "/ready", timeout=5)
        latency = time.monotonic() - stopped
        assert response.status_code == 503, response.text
        assert "database unreachable" in response.json()["message"]
        assert latency < 1.0, latency
        print(f"/ready answered 503 {latency * 1000:.0f} ms after PostgreSQL stopped")
        assert httpx.get(api.url + "/health").status_code == 200  # alive all the same

        cluster.start()
        deadline = time.monotonic() + 10
        while httpx.get(api.url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after PostgreSQL came back"
            time.sleep(0.1)
