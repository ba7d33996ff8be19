"""Four processes started at the same moment on an empty database all come up (SPEC §16).

Without the startup lock the second one died on ``alembic_version``'s unique key.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text

from passpost.db import head_revisions
from passpost.locks import libpq_dsn
from tests.conftest import create_pg_database, drop_pg_database, postgres_available
from tests.support.net import free_port
from tests.support.service import base_env

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def empty_backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    url = create_pg_database()
    try:
        yield {"PASSPOST_DATABASE_URL": url, "PASSPOST_QUEUE_URL": libpq_dsn(url)}
    finally:
        drop_pg_database(url)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout}s:\n{log.read_text()}")


def test_four_api_processes_start_at_once_on_an_empty_database(
    tmp_path: Path, empty_backend: dict[str, str]
) -> None:
    env = base_env(tmp_path / "data", **empty_backend)
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for i in range(4):
            port = free_port()
            log = tmp_path / f"api-{i}.log"
            cmd = [sys.executable, "-m", "passpost.cli", "api", "--port", str(port)]
            with log.open("wb") as out:
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
            procs.append((f"http://127.0.0.1:{port}", proc, log))
        for url, proc, log in procs:
            _wait_ready(url, proc, log)
    finally:
        for _, proc, _ in procs:
            proc.terminate()
        for _, proc, _ in procs:
            proc.wait(20)
    database = empty_backend.get("PASSPOST_DATABASE_URL", f"sqlite:///{tmp_path}/data/passpost.db")
    engine = create_engine(database)
    with engine.connect() as conn:
        versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    engine.dispose()
    assert set(versions) == set(head_revisions()) and len(versions) == len(head_revisions())
    if empty_backend:
        with psycopg.connect(libpq_dsn(empty_backend["PASSPOST_DATABASE_URL"])) as conn:
            assert conn.execute("SELECT count(*) FROM huey_task").fetchone() == (0,)
