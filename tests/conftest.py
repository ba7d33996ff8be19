"""Shared fixtures: the shared samples, throwaway databases on SQLite and PostgreSQL.

A test whose component (PostgreSQL, Redis, node/npm, openssl, the shared samples) is absent
skips, except under CI (``CI=true``), where ``missing()`` fails it: a green CI run has run
everything.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from argon2 import PasswordHasher
from fastapi.dependencies import utils as fastapi_dependencies
from fastapi.testclient import TestClient

from passpost.auth import passwords
from passpost.config import Settings, get_settings
from tests.peers.smpp_server.smsc import Smsc, ensure_installed
from tests.support.app import create_test_operator, make_client
from tests.support.migrations import DatabaseAt, MigrationDatabase
from tests.support.passes import TestPki, shared_pki
from tests.support.pg_reset import PgResetter
from tests.support.smtp import SmtpServer

PG_ADMIN_URL = os.environ.get("PASSPOST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PASSPOST_TEST_REDIS", "redis://127.0.0.1:6379")
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """Skip a test that needs something this machine lacks; under CI, fail it instead."""
    if CI:
        pytest.fail(f"{what} (CI=true: nothing may be skipped)", pytrace=False)
    pytest.skip(what)


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


# argon2id at its production cost (t=3, 64 MiB, p=4) is ~150 ms of CPU per hash or check,
# and the suite makes thousands (every operator it creates, every wrong password the
# throttle tests send, every unknown user's "burned" check). In this process the hasher has
# the cheapest parameters argon2 allows; what the tests prove (who is let in, what is
# counted, what is stored) does not depend on the cost. Tests about the cost itself (the
# stored parameters, argon2's own pool) ask for ``production_argon2``; processes that
# tests start (``passpost serve``...) hash at production cost.
PRODUCTION_HASHER = passwords._hasher
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def production_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with passpost's production parameters for this test."""
    monkeypatch.setattr(passwords, "_hasher", PRODUCTION_HASHER)
    monkeypatch.setattr(passwords, "_dummy_hash", None)
    passwords.clear_cache()


# Every test builds a fresh app (its settings differ), and FastAPI derives each included
# route's dependencies on the app's first request: for each endpoint and dependency it
# reads the signature and evaluates the string annotations (``from __future__ import
# annotations``): ~30 % of the sampled CPU of the API tests, 12 % in those signatures
# alone. A typed signature depends only on the function, so this process computes it once
# per function (tests/distribution/test_import_api.py: 30.6 s -> 26.2 s of CPU). The
# routes themselves are still built per app, as in production.
_typed_signature = fastapi_dependencies.get_typed_signature
_typed_signatures: dict[object, inspect.Signature] = {}


def _cached_typed_signature(call: Callable[..., object]) -> inspect.Signature:
    try:
        return _typed_signatures[call]
    except KeyError:
        signature = _typed_signatures[call] = _typed_signature(call)
        return signature
    except TypeError:  # an unhashable callable object
        return _typed_signature(call)


fastapi_dependencies.get_typed_signature = _cached_typed_signature


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Under CI, any skip (not only ``missing``) is reported as a failure."""
    report: pytest.TestReport = yield
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"
    return report


class _NoProcessesHere(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, args: object, *rest: object, **kwargs: object) -> None:
        raise AssertionError(
            f"this test starts a process ({args!r}): mark it @pytest.mark.slow, "
            'so that the fast loop (pytest -m "not slow") stays fast'
        )


@pytest.fixture(autouse=True)
def _processes_only_in_slow_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the fast loop honest: a test that starts a process must be marked ``slow``."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setattr(subprocess, "Popen", _NoProcessesHere)


@pytest.fixture
def samples_dir() -> Path:
    """The shared sample passes and certificates (``missing`` when they are absent)."""
    if not SAMPLES.is_dir():
        missing(f"shared samples not found at {SAMPLES} (set PASSPOST_SHARED)")
    return SAMPLES


def shared_sample(name: str) -> Path:
    """One file of ``samples/pkpass`` (``missing`` when it is absent)."""
    path = SAMPLES / "pkpass" / name
    if not path.is_file():
        missing(f"shared sample {name} not found in {path.parent}")
    return path


def postgres_available() -> bool:
    """True when the test PostgreSQL server accepts a connection."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def require_postgres() -> None:
    """``missing`` unless the test PostgreSQL server answers."""
    if not postgres_available():
        missing("PostgreSQL is not reachable at " + PG_ADMIN_URL)


REDIS_DATABASES = range(1, 15)  # 0 holds the leases; 15 is left to other users
REDIS_LEASE_SECONDS = 900  # longer than the per-test timeout: a killed run's lease expires


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database (1–14) leased to this test alone, flushed before and after.

    Test processes run side by side (pytest-xdist workers, other checkouts), so the number
    is taken with ``SET NX`` on a lease key in database 0 rather than picked at random.
    """
    import redis

    admin = redis.Redis.from_url(f"{REDIS_URL}/0")
    token = secrets.token_hex(8)
    deadline = time.monotonic() + 120
    number = None
    try:
        while number is None:
            order = secrets.SystemRandom().sample(REDIS_DATABASES, len(REDIS_DATABASES))
            number = next(
                (
                    n
                    for n in order
                    if admin.set(f"passpost-test:lease:{n}", token, nx=True, ex=REDIS_LEASE_SECONDS)
                ),
                None,
            )
            if number is None:
                if time.monotonic() > deadline:
                    pytest.fail("no Redis test database came free in 120 s")
                time.sleep(0.2)
    except redis.ConnectionError:
        missing("Redis is not reachable at " + REDIS_URL)
    url = f"{REDIS_URL}/{number}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if admin.get(f"passpost-test:lease:{number}") == token.encode():
            admin.delete(f"passpost-test:lease:{number}")


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


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Smsc]:
    """A fresh test SMSC process (server.js) on free loopback ports (``missing`` without npm)."""
    try:
        ensure_installed()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        missing(f"the test SMSC cannot be installed here: {exc}")
    server = Smsc(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_peer() -> Iterator[SmtpServer]:
    """The suite's SMTP peer (``tests/support/smtp.py``) on a free loopback port."""
    with SmtpServer() as peer:
        yield peer


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the test operator, copied for each test (migrating and
    hashing a password per test is slow)."""
    from passpost.db import get_engine, migrate

    path = tmp_path_factory.mktemp("template") / "passpost.db"
    url = f"sqlite:///{path}"
    migrate(url)
    create_test_operator(url)
    get_engine(url).dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database with the test operator, the ``TEMPLATE`` of each test's."""
    if not postgres_available():
        yield None
        return
    from passpost.db import get_engine, migrate

    url = create_pg_database()
    migrate(url)
    create_test_operator(url)
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


@pytest.fixture(scope="session")
def pg_database(pg_template: str | None) -> Iterator[PgResetter | None]:
    """This session's PostgreSQL test database (a copy of the template), reset per test."""
    if pg_template is None:
        yield None
        return
    from passpost.db import get_engine

    url = clone_pg_database(pg_template)
    try:
        yield PgResetter.capture(url)
    finally:
        get_engine(url).dispose()
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_database: PgResetter | None,
) -> Iterator[str]:
    """A migrated database holding only the test operator: SQLite, and PostgreSQL.

    SQLite: a copy of the template file. PostgreSQL: the session's database, emptied and
    refilled as the template before the test (see ``tests/support/pg_reset.py``).
    """
    if request.param == "sqlite":
        path = tmp_path / "passpost.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_database is None:
        missing("PostgreSQL is not reachable at " + PG_ADMIN_URL)
    from passpost.db import get_engine

    get_engine(pg_database.url).dispose()
    pg_database.reset()
    try:
        yield pg_database.url
    finally:
        get_engine(pg_database.url).dispose()


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
            missing("PostgreSQL is not reachable at " + PG_ADMIN_URL)
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


@pytest.fixture(scope="session")
def pki() -> TestPki:
    """The suite's test PKI: root → intermediate → Pass Type ID (made once: RSA keys are slow)."""
    return shared_pki()


@pytest.fixture
def settings(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str, pki: TestPki
) -> Settings:
    """passpost's settings for in-process tests: ``database_url``, ``pki``'s root trusted."""
    anchors = pki.write_root(settings_env.parent / "anchors.pem")
    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    monkeypatch.setenv("PASSPOST_TRUST_ANCHORS", str(anchors))
    get_settings.cache_clear()
    return get_settings()


MakeClient = Callable[..., TestClient]


@pytest.fixture
def client_with(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[MakeClient]:
    """Make the app after setting ``PASSPOST_<NAME>`` variables: ``client_with(smtp_url=...)``."""
    generators: list[Iterator[TestClient]] = []

    def make(**env: str) -> TestClient:
        for key, value in env.items():
            monkeypatch.setenv(f"PASSPOST_{key.upper()}", value)
        generator = make_client(monkeypatch, settings.resolved_database_url)
        generators.append(generator)
        return next(generator)

    yield make
    for generator in generators:
        for _ in generator:
            pass


@pytest.fixture
def client(client_with: MakeClient) -> TestClient:
    """The app in-process on ``database_url`` (SQLite and PostgreSQL), ``pki`` trusted; log
    in as ``tests.support.app.basic()``."""
    return client_with()
