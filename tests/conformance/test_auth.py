"""The login call and the credential headers the pages document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from passpost.auth import service
from passpost.config import get_settings
from passpost.db import session_scope
from tests.conformance import shapes
from tests.support.app import PASSWORD, USERNAME, basic

PROTECTED = "/api/v1/audience"


def _login(client: TestClient) -> dict[str, object]:
    fixture = shapes.load("auth_login")
    body = dict(fixture["request"]["json"], userid=USERNAME, password=PASSWORD)
    response = client.post(fixture["path"], json=body)
    shapes.check(fixture, response.status_code, response.json())
    return response.json()


def test_login_profile(client: TestClient) -> None:
    answer = _login(client)
    profile = answer["profile"]
    assert isinstance(profile, dict) and profile["userid"] == USERNAME
    form = client.post(
        "/authService/accounts/login", data={"userid": USERNAME, "password": PASSWORD}
    )
    assert form.status_code == 200
    wrong = client.post("/authService/accounts/login", json={"userid": USERNAME, "password": "x"})
    shapes.error_shape(wrong.status_code, wrong.json(), 401)


def test_every_documented_header(client: TestClient) -> None:
    token = _login(client)["claims_token"]["value"]  # type: ignore[index]
    with session_scope(get_settings().resolved_database_url) as session:
        _, api_key = service.create_api_key(session, name="script")
    for headers in (
        basic(),
        {"X-VoltMX-Authorization": token},
        {"X-Kony-Authorization": token},
        {"Authorization": f"Bearer {token}"},
        {"X-VoltMX-Authorization": api_key},
        {"X-VoltMX-App-API-Key": api_key},
    ):
        response = client.get(PROTECTED, headers=headers)
        assert response.status_code == 200, (headers, response.text)
    for headers in (
        {},
        {"X-Kony-Authorization": "not-a-token"},
        {"X-VoltMX-App-API-Key": "not-a-key"},
        {"X-VoltMX-App-API-Key": token},  # a claims token is not an app key
    ):
        response = client.get(PROTECTED, headers=headers)
        shapes.error_shape(response.status_code, response.json(), 401)
