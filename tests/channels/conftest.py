"""Fixtures for the channel tests (the peers themselves live in ``smtp_peer``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.channels.smtp_peer import SmtpPeer, TlsCert, make_test_cert, start_peer


@pytest.fixture
def smtp_peer() -> Iterator[SmtpPeer]:
    """A plain SMTP server (no TLS, no auth) on a free loopback port."""
    peer = start_peer()
    yield peer
    peer.controller.stop()


@pytest.fixture(scope="session")
def test_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    return make_test_cert(tmp_path_factory.mktemp("tls"))
