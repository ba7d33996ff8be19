"""Fixtures for the channel tests (the peers themselves live in ``smtp_peer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.auth.helpers import make_client
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


MakeClient = Callable[..., TestClient]


@pytest.fixture
def client_with(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[MakeClient]:
    """The app (SQLite and PostgreSQL) on a fresh database after setting PASSPOST_* variables."""
    generators: list[Iterator[TestClient]] = []

    def make(**env: str) -> TestClient:
        for key, value in env.items():
            monkeypatch.setenv(f"PASSPOST_{key.upper()}", value)
        generator = make_client(monkeypatch, database_url)
        generators.append(generator)
        return next(generator)

    yield make
    for generator in generators:
        for _ in generator:
            pass
