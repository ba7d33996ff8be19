"""Fixtures of the PassKit tests: the app on a test database, a test PKI, a pass store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.auth.helpers import make_client
from tests.passkit.helpers import PassStore
from tests.peers.apns_server import ApnsPki, make_test_pki
from tests.support.passes import TestPki, make_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    """A throwaway root → intermediate → Pass Type ID chain (made once: RSA keys are slow)."""
    return make_pki()


@pytest.fixture(scope="module")
def apns_pki(tmp_path_factory: pytest.TempPathFactory) -> ApnsPki:
    """CA, APNs server certificate, pass client certificate and .p8 key, one set per module."""
    return make_test_pki(tmp_path_factory.mktemp("apns-pki"))


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[TestClient]:
    """The app on a fresh database (SQLite and PostgreSQL) with the operator ``ops``."""
    yield from make_client(monkeypatch, database_url)


@pytest.fixture
def store(database_url: str, pki: TestPki) -> PassStore:
    """Stores signed passes as new versions, like the import does."""
    return PassStore(database_url, pki)
