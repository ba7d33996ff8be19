"""Fixtures of the certificate tests: the app with an operator, a test PKI, .p12 files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from fastapi.testclient import TestClient

from tests.auth.helpers import make_client
from tests.support.passes import TestPki, make_pki

PASSPHRASE = "p12 secret phrase"


@pytest.fixture(scope="session")
def pki() -> TestPki:
    """A throwaway root → intermediate → Pass Type ID chain."""
    return make_pki()


def make_p12(pki: TestPki, passphrase: str = PASSPHRASE, *, with_key: bool = True) -> bytes:
    """A .p12 as Keychain exports it: the leaf, its key, the intermediate."""
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"pass type id",
        pki.leaf_key if with_key else None,
        pki.leaf,
        [pki.intermediate],
        encryption,
    )


@pytest.fixture
def p12(pki: TestPki) -> bytes:
    return make_p12(pki)


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[TestClient]:
    """The app on a fresh database (SQLite and PostgreSQL) with the operator ``ops``."""
    yield from make_client(monkeypatch, database_url)
