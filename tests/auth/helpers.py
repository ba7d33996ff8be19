"""Shared by the auth and audience tests: an app on a test database, with an operator."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from passpost.auth import passwords, service, throttle
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.web.app import create_app

USERNAME = "ops"
PASSWORD = "correct horse battery staple"


def basic(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_client(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[TestClient]:
    """A TestClient on ``database_url`` with the operator ``ops`` already created."""
    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    passwords.clear_cache()
    throttle.reset()
    with session_scope(database_url) as session:
        service.create_operator(session, username=USERNAME, password=PASSWORD)
    with TestClient(create_app()) as client:
        yield client
    passwords.clear_cache()
