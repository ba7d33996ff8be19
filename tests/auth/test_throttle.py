"""Credential failures are throttled per username and per address; argon2 has its own pool."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient

from passpost.auth import service
from passpost.config import get_settings
from passpost.db import session_scope
from tests.support.app import PASSWORD, USERNAME, basic, make_client

PROBE = "/api/v1/audience"
LOGIN = "/authService/accounts/login"


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str
) -> Iterator[TestClient]:
    yield from make_client(monkeypatch, database_url)


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["errorCode"] == "TOO_MANY_FAILED_LOGINS"
    return int(response.headers["Retry-After"])


def test_45_wrong_passwords_then_the_right_one_are_refused_with_retry_after(
    client: TestClient,
) -> None:
    statuses = [
        client.get(PROBE, headers=basic(password=f"wrong-{n}")).status_code for n in range(45)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 35, statuses
    right = client.get(PROBE, headers=basic())
    assert 1 <= _retry_after(right) <= 300
    # The login call counts against the same username.
    login = client.post(LOGIN, json={"userid": USERNAME, "password": PASSWORD})
    assert 1 <= _retry_after(login) <= 300


def test_login_call_failures_count_too(client: TestClient) -> None:
    for n in range(10):
        response = client.post(LOGIN, json={"userid": USERNAME, "password": f"nope-{n}"})
        assert response.status_code == 401
    _retry_after(client.post(LOGIN, json={"userid": USERNAME, "password": PASSWORD}))
    _retry_after(client.get(PROBE, headers=basic()))


def test_a_success_forgives_the_usernames_earlier_failures(client: TestClient) -> None:
    for _ in range(2):
        for n in range(9):
            assert client.get(PROBE, headers=basic(password=f"x{n}")).status_code == 401
        assert client.get(PROBE, headers=basic()).status_code == 200


def test_an_address_guessing_many_usernames_is_refused(client: TestClient) -> None:
    for n in range(30):
        response = client.get(PROBE, headers=basic(username=f"user{n}", password="guess"))
        assert response.status_code == 401, n
    _retry_after(client.get(PROBE, headers=basic()))
    # Another address may still sign in as ops (whose own count is clean).
    elsewhere = TestClient(client.app, client=("203.0.113.9", 50000))
    assert elsewhere.get(PROBE, headers=basic()).status_code == 200


def test_refused_refresh_tokens_count_against_the_address(client: TestClient) -> None:
    for n in range(30):
        response = client.post("/authService/accounts/refresh", json={"refresh_token": f"t{n}"})
        assert response.status_code == 401
    refused = client.post("/authService/accounts/refresh", json={"refresh_token": "again"})
    _retry_after(refused)


def test_waiting_for_argon2_holds_no_shared_thread(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str, production_argon2: None
) -> None:
    """A flood of password checks queues in argon2's own pool: an API-key request on the
    shared thread pool (cut to 2 threads here) is answered before any of them."""
    client = next(make_client(monkeypatch, database_url))
    with session_scope(database_url) as session:
        _, key = service.create_api_key(session, name="probe")
    app = client.app
    assert get_settings().resolved_database_url == database_url

    async def scenario() -> tuple[float, float]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            finished: list[float] = []

            async def guess(n: int) -> None:
                token = base64.b64encode(f"user{n}:guess-{n}".encode()).decode()
                await http.get(PROBE, headers={"Authorization": f"Basic {token}"})
                finished.append(time.monotonic())

            flood = [asyncio.create_task(guess(n)) for n in range(8)]
            await asyncio.sleep(0.05)
            probe = await http.get(PROBE, headers={"Authorization": f"Bearer {key}"})
            probed = time.monotonic()
            assert probe.status_code == 200, probe.text
            await asyncio.gather(*flood)
            return probed, min(finished)

    probed, first_guess_done = asyncio.run(scenario())
    assert probed < first_guess_done
