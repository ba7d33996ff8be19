"""Shared fixtures: the shared samples, throwaway databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from passpost.config import get_settings
from tests.support.migrations import DatabaseAt, MigrationDatabase

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test is slow)."""
    from passpost.db import get_engine, migrate

    path = tmp_path_factory.mktemp("template") / "passpost.db"
    url = f"sqlite:///{path}"
    migrate(url)
    get_engine(url).dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database used as ``CREATE DATABASE … TEMPLATE`` per test."""
    if not postgres_available():
        yield None
        return
    from passpost.db import get_engine, migrate

    url = create_pg_database()
    migrate(url)
    get_engine(url).dispose()
    try:
        yield url
    finally:
        drop_pg_database(url)


def clone_pg_database(template_url: str) -> str:
    """A new database copied from a migrated template; returns its SQLAlchemy URL."""
    import psycopg

    template = template_url.rsplit("/", 1)[1]
    name = f"passpost_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{template_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_template: str | None,
) -> Iterator[str]:
    """A migrated, empty database: SQLite in tmp_path, and PostgreSQL when reachable."""
    if request.param == "sqlite":
        path = tmp_path / "passpost.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_template is None:
        pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    url = clone_pg_database(pg_template)
    try:
        yield url
    finally:
        from passpost.db import get_engine

        get_engine(url).dispose()
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_at(
    request: pytest.FixtureRequest, tmp_path: Path, pg_template: str | None
) -> Iterator[DatabaseAt]:
    """Make empty databases brought to a given revision (see ``tests/support/migrations``)."""
    from passpost.db import get_engine

    urls: list[str] = []

    def at(revision: str) -> MigrationDatabase:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'at-{len(urls)}.db'}"
        elif pg_template is None:
            pytest.skip("PostgreSQL is not reachable at " + PG_ADMIN_URL)
        else:
            url = create_pg_database()
        urls.append(url)
        database = MigrationDatabase(url)
        database.upgrade(revision)
        return database

    yield at
    for url in urls:
        get_engine(url).dispose()
        if url.startswith("postgresql"):
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
