"""The app in-process (FastAPI TestClient) and the test operator every test database holds."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from passpost.auth import throttle
from passpost.config import get_settings

USERNAME = "ops"
PASSWORD = "correct horse battery staple"
OPERATOR = (USERNAME, PASSWORD)


def basic(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def create_test_operator(database_url: str) -> None:
    """The operator ``ops``; made once per template database, so every test database has it."""
    from passpost.auth import service
    from passpost.db import session_scope

    with session_scope(database_url) as session:
        service.create_operator(session, username=USERNAME, password=PASSWORD)


def make_client(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[TestClient]:
    """A TestClient of a fresh app on ``database_url`` (a test database: ``ops`` exists).

    The verified-password cache is kept between tests: its key holds the operator id and
    the stored hash, identical in every copy of the template, so ``ops``'s argon2 check
    (tens of milliseconds) is paid about once a minute instead of once per test.
    """
    from passpost.web.app import create_app

    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    throttle.reset()  # failed-login counters are per process
    with TestClient(create_app()) as client:
        yield client
