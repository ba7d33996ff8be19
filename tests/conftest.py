"""Shared fixtures: the shared samples, throwaway databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from passpost.config import get_settings

PG_ADMIN_URL = os.environ.get("PASSPOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _find_shared() -> Path:
    env = os.environ.get("PASSPOST_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]
    for candidate in candidates:
        if (candidate / "samples").is_dir():
            return candidate
    return candidates[0]


SHARED = _find_shared()
SAMPLES = SHARED / "samples"


@pytest.fixture
def samples_dir() -> Path:
    """The shared sample passes and certificates, or a skip when they are absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES} (set PASSPOST_SHARED)")
    return SAMPLES


def postgres_available() -> bool:
    """True when the test PostgreSQL server answers."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def create_pg_database() -> str:
    """Create an empty throwaway PostgreSQL database; return its SQLAlchemy URL."""
    import psycopg

    name = f"passpost_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    """Drop a database made by ``create_pg_database`` (forcing out open connections)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite in tmp_path, and PostgreSQL when reachable."""
    from passpost.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'passpost.db'}"
        migrate(url)
        yield url
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    url = create_pg_database()
    try:
        migrate(url)
        yield url
    finally:
        from passpost.db import get_engine

        get_engine(url).dispose()
        drop_pg_database(url)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A clean PASSPOST_* environment with its data directory in tmp_path."""
    for key in list(os.environ):
        if key.startswith("PASSPOST_") and key not in ("PASSPOST_SHARED", "PASSPOST_TEST_PG"):
            monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PASSPOST_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()
