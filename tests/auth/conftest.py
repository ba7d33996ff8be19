"""Fixtures of the auth tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.auth.helpers import make_client


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[TestClient]:
    """The app on a fresh database (SQLite and PostgreSQL) with the operator ``ops``."""
    yield from make_client(monkeypatch, database_url)
