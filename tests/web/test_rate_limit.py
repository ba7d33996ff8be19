"""Anonymous endpoints are rate-limited per client address (429 + Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from passpost.config import get_settings
from passpost.web.app import create_app

GROUPS = [
    ("PASSPOST_RATE_LIMIT_DEVICE_LOG", "POST", "/api/v1/log"),
    ("PASSPOST_RATE_LIMIT_PASSKIT", "GET", "/api/v1/passes/pass.example/S1"),
    ("PASSPOST_RATE_LIMIT_PASSKIT", "GET", "/api/v1/devices/d1/registrations/pass.example"),
    ("PASSPOST_RATE_LIMIT_LINKS", "GET", "/p/some-unknown-token"),
    ("PASSPOST_RATE_LIMIT_RECEIPTS", "POST", "/api/v1/sms/receipts/twilio"),
]


@pytest.fixture
def app_env(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[tuple[pytest.MonkeyPatch, str]]:
    yield monkeypatch, database_url


def _client(monkeypatch: pytest.MonkeyPatch, database_url: str, **env: str) -> TestClient:
    monkeypatch.setenv("PASSPOST_DATABASE_URL", database_url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return TestClient(create_app())


@pytest.mark.parametrize(("variable", "method", "path"), GROUPS)
def test_an_address_past_its_rate_gets_429_with_retry_after(
    app_env: tuple[pytest.MonkeyPatch, str], variable: str, method: str, path: str
) -> None:
    # Per hour: the sliding-window counter weighs the previous window, so a test that
    # straddles a window's end may be allowed one more; an hour makes that unlikely.
    client = _client(*app_env, **{variable: "5/hour"})
    answers = [client.request(method, path, content=b'{"logs": ["x"]}') for _ in range(5)]
    assert all(r.status_code != 429 for r in answers), [r.status_code for r in answers]
    refused = client.request(method, path, content=b'{"logs": ["x"]}')
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "RATE_LIMITED" and refused.json()["id"] == "-1"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    # Another address has its own allowance; so do the other groups and operators' calls.
    other = TestClient(client.app, client=("198.51.100.7", 40000))
    assert other.request(method, path, content=b"{}").status_code != 429
    assert client.get("/api/v1/audience").status_code == 401


def test_the_default_rates_leave_normal_use_alone(
    app_env: tuple[pytest.MonkeyPatch, str],
) -> None:
    client = _client(*app_env)
    for _ in range(50):
        assert client.post("/api/v1/log", json={"logs": ["hello"]}).status_code == 200
        assert client.get("/p/unknown").status_code == 404


def test_off_disables_a_group(app_env: tuple[pytest.MonkeyPatch, str]) -> None:
    client = _client(*app_env, PASSPOST_RATE_LIMIT_LINKS="off")
    assert all(client.get("/p/x").status_code == 404 for _ in range(150))


def test_each_app_counts_afresh(app_env: tuple[pytest.MonkeyPatch, str]) -> None:
    client = _client(*app_env, PASSPOST_RATE_LIMIT_LINKS="2/hour")
    assert [client.get("/p/x").status_code for _ in range(3)] == [404, 404, 429]
    assert isinstance(client.app, FastAPI)
    fresh = _client(*app_env)
    assert fresh.get("/p/x").status_code == 404
