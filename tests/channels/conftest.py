"""Fixtures of the channel tests: a TLS certificate for the SMTP peer."""

from __future__ import annotations

import pytest

from tests.support.smtp import TlsCert, make_test_cert


@pytest.fixture(scope="session")
def test_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    return make_test_cert(tmp_path_factory.mktemp("tls"))
