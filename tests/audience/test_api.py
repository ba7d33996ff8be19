"""The audience API over the real app: shapes, validation codes, CRUD, paging, 401s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.app import basic

AUTH = basic()


def _create(client: TestClient, **fields: Any) -> str:
    response = client.post("/api/v1/audience", json=fields, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Details added successfully"
    assert isinstance(body["id"], str) and body["id"].isdigit()
    return str(body["id"])


def _total(client: TestClient) -> int:
    return int(client.get("/api/v1/audience", headers=AUTH).json()["total"])


def test_create_and_read_normalised(client: TestClient) -> None:
    rid = _create(
        client,
        firstName=" Ada ",
        lastName="Lovelace",
        email="Ada.Lovelace@Example.COM",
        mobileNumber="(202) 555-0143",
        state="NY",
        country="USA",
        smsSubscription=False,
        voiceSubscription=False,  # the original's field: stored and shown
    )
    got = client.get(f"/api/v1/audience/{rid}", headers=AUTH)
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == rid
    assert body["firstName"] == "Ada" and body["lastName"] == "Lovelace"
    assert body["email"] == "ada.lovelace@example.com"
    assert body["mobileNumber"] == "+12025550143"
    assert (body["state"], body["country"]) == ("NY", "USA")
    assert body["smsSubscription"] is False and body["voiceSubscription"] is False
    assert body["emailSubscription"] is True and body["pushSubscription"] is True
    assert body["createdDateStr"].endswith("UTC") and body["lastModifiedDateStr"]


def test_mobile_number_as_the_originals_long(client: TestClient) -> None:
    rid = _create(client, firstName="Long", mobileNumber=919030952000)
    body = client.get(f"/api/v1/audience/{rid}", headers=AUTH).json()
    assert body["mobileNumber"] == "+919030952000" and body["email"] == ""


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"email": "not-an-address"}, "INVALID_EMAIL"),
        ({"email": "a@b"}, "INVALID_EMAIL"),
        ({"email": "two@@example.com"}, "INVALID_EMAIL"),
        ({"email": "x y@example.com"}, "INVALID_EMAIL"),
        ({"email": "ok@example.com", "mobileNumber": "12"}, "INVALID_MOBILE_NUMBER"),
        ({"mobileNumber": "555-0100"}, "INVALID_MOBILE_NUMBER"),
        ({"firstName": "Nobody"}, "MISSING_CONTACT"),
        ({"email": "", "mobileNumber": " "}, "MISSING_CONTACT"),
        ({"email": "ok@example.com", "smsSubscription": "maybe"}, "INVALID_FLAG"),
        ({"email": "ok@example.com", "firstName": "x" * 201}, "FIELD_TOO_LONG"),
        ({"email": "ok@example.com", "firstName": ["a"]}, "INVALID_REQUEST"),
        # Epoch milliseconds outside datetime's years 1-9999 (found by schemathesis).
        ({"email": "ok@example.com", "lastActiveDateStr": -999999999999999}, "INVALID_DATE"),
        ({"email": "ok@example.com", "lastActiveDate": 10**20}, "INVALID_DATE"),
    ],
)
def test_create_rejects(client: TestClient, fields: dict[str, Any], code: str) -> None:
    response = client.post("/api/v1/audience", json=fields, headers=AUTH)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == code and body["id"] == "-1" and body["message"]
    assert _total(client) == 0


def test_duplicate_email_is_400(client: TestClient) -> None:
    _create(client, email="dup@example.com")
    response = client.post("/api/v1/audience", json={"email": "DUP@example.com"}, headers=AUTH)
    assert response.status_code == 400  # the original's status for "User already exists"
    assert response.json()["errorCode"] == "DUPLICATE_EMAIL"
    assert _total(client) == 1


def test_update_is_partial(client: TestClient) -> None:
    rid = _create(client, firstName="Old", lastName="Name", email="u@example.com", state="CA")
    other = _create(client, email="taken@example.com")
    response = client.put(
        f"/api/v1/audience/{rid}",
        json={"firstName": "New", "state": None, "emailSubscription": "false"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": rid, "message": "Details updated successfully"}
    body = client.get(f"/api/v1/audience/{rid}", headers=AUTH).json()
    assert (body["firstName"], body["lastName"], body["state"]) == ("New", "Name", "")
    assert body["emailSubscription"] is False and body["email"] == "u@example.com"

    clash = client.put(f"/api/v1/audience/{rid}", json={"email": "Taken@example.com"}, headers=AUTH)
    assert clash.status_code == 400 and clash.json()["errorCode"] == "DUPLICATE_EMAIL"
    empty = client.put(f"/api/v1/audience/{rid}", json={"email": ""}, headers=AUTH)
    assert empty.status_code == 400 and empty.json()["errorCode"] == "MISSING_CONTACT"
    bad = client.put(f"/api/v1/audience/{rid}", json={"mobileNumber": "abc"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_MOBILE_NUMBER"
    same = client.put(
        f"/api/v1/audience/{other}", json={"email": "TAKEN@example.com"}, headers=AUTH
    )
    assert same.status_code == 200
    missing = client.put("/api/v1/audience/999999", json={"firstName": "x"}, headers=AUTH)
    assert missing.status_code == 400 and missing.json()["errorCode"] == "AUDIENCE_NOT_FOUND"


def test_delete(client: TestClient) -> None:
    first = _create(client, email="one@example.com")
    second = _create(client, email="two@example.com")
    response = client.post(f"/api/v1/audience/{first}/delete", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"id": first, "message": "User deleted successfully"}
    assert client.get(f"/api/v1/audience/{first}", headers=AUTH).status_code == 400
    assert client.post(f"/api/v1/audience/{first}/delete", headers=AUTH).status_code == 400
    assert client.delete(f"/api/v1/audience/{second}", headers=AUTH).status_code == 200
    assert _total(client) == 0
    # The e-mail is free again.
    _create(client, email="one@example.com")


def test_list_pages(client: TestClient) -> None:
    ids = [_create(client, email=f"p{i}@example.com") for i in range(5)]
    body = client.get("/api/v1/audience?start=1&pageSize=2", headers=AUTH).json()
    assert body["total"] == 5
    assert [r["id"] for r in body["audience"]] == ids[1:3]
    tail = client.get("/api/v1/audience?start=4&pageSize=10", headers=AUTH).json()
    assert [r["id"] for r in tail["audience"]] == ids[4:]
    default = client.get("/api/v1/audience", headers=AUTH).json()
    assert len(default["audience"]) == 5
    for query in ("start=-1", "pageSize=0", "pageSize=1001", "start=x"):
        response = client.get(f"/api/v1/audience?{query}", headers=AUTH)
        assert response.status_code == 400, query


@pytest.mark.parametrize("path", ["/api/v1/audience/0", "/api/v1/audience/abc"])
def test_bad_ids(client: TestClient, path: str) -> None:
    assert client.get(path, headers=AUTH).status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/audience"),
        ("GET", "/api/v1/audience"),
        ("GET", "/api/v1/audience/1"),
        ("PUT", "/api/v1/audience/1"),
        ("POST", "/api/v1/audience/1/delete"),
        ("DELETE", "/api/v1/audience/1"),
        ("POST", "/api/v1/audience/import"),
    ],
)
def test_every_endpoint_needs_credentials(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={"email": "a@example.com"})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "AUTH_REQUIRED"
    bad = client.request(method, path, headers=basic(password="wrong"))
    assert bad.status_code == 401
