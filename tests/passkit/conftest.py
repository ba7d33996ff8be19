"""Fixtures of the PassKit tests: the APNs PKI, a pass store."""

from __future__ import annotations

import pytest

from tests.passkit.helpers import PassStore
from tests.peers.apns_server import ApnsPki, make_test_pki
from tests.support.passes import TestPki


@pytest.fixture(scope="module")
def apns_pki(tmp_path_factory: pytest.TempPathFactory) -> ApnsPki:
    """CA, APNs server certificate, pass client certificate and .p8 key, one set per module."""
    return make_test_pki(tmp_path_factory.mktemp("apns-pki"))


@pytest.fixture
def store(database_url: str, pki: TestPki) -> PassStore:
    """Stores signed passes as new versions, like the import does."""
    return PassStore(database_url, pki)
