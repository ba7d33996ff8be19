"""Audience ("Users") calls and the upload status calls, as the pages document them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from passpost.audience.tasks import import_upload
from tests.conformance import shapes
from tests.support.app import basic


def _create(client: TestClient, **changes: object) -> str:
    fixture = shapes.load("audience_create")
    body = {**fixture["request"]["json"], **changes}
    response = client.post(fixture["path"], json=body, headers=basic())
    shapes.check(fixture, response.status_code, response.json())
    return str(response.json()["id"])


def test_create_get_list(client: TestClient) -> None:
    user_id = _create(client)
    get = shapes.load("audience_get")
    response = client.get(get["path"].replace("{id}", user_id), headers=basic())
    shapes.check(get, response.status_code, response.json())
    user = response.json()
    # The sample request's voiceSubscription and lastActiveDate are kept; "" stays "".
    assert user["voiceSubscription"] is True
    assert user["lastActiveDateStr"].startswith("08/23/2017")
    assert user["mobileNumber"] == "" and user["state"] == ""

    listing = shapes.load("audience_list")
    response = client.get(listing["path"], params=listing["query"], headers=basic())
    shapes.check(listing, response.status_code, response.json())
    assert response.json()["total"] == 1


def test_duplicate_and_unknown_are_400(client: TestClient) -> None:
    user_id = _create(client)
    again = client.post(
        "/api/v1/audience", json=shapes.load("audience_create")["request"]["json"], headers=basic()
    )
    shapes.error_shape(again.status_code, again.json(), 400)
    assert again.json()["errorCode"] == "DUPLICATE_EMAIL"
    # The original names the existing user in its answer.
    assert f"(id {user_id})" in again.json()["message"]
    for method, path in (
        ("GET", "/api/v1/audience/999999"),
        ("PUT", "/api/v1/audience/999999"),
        ("POST", "/api/v1/audience/999999/delete"),
    ):
        response = client.request(method, path, json={"firstName": "x"}, headers=basic())
        shapes.error_shape(response.status_code, response.json(), 400)


def test_modify_put_and_patch(client: TestClient) -> None:
    user_id = _create(client)
    put = shapes.load("audience_modify")
    response = client.put(
        put["path"].replace("{id}", user_id), json=put["request"]["json"], headers=basic()
    )
    shapes.check(put, response.status_code, response.json())

    patch = shapes.load("audience_patch")
    by_email = client.patch(
        patch["path"],
        params={"emailId": "latha.ganesh@gmail.com"},
        json={"firstName": "Lata", "voiceSubscription": False},
        headers=basic(),
    )
    shapes.check(patch, by_email.status_code, by_email.json())
    by_id = client.patch(
        patch["path"], params={"id": user_id}, json=patch["request"]["json"], headers=basic()
    )
    shapes.check(patch, by_id.status_code, by_id.json())
    user = client.get(f"/api/v1/audience/{user_id}", headers=basic()).json()
    # Only the attributes sent changed; the body's emailId became the address.
    assert user["firstName"] == "Lata" and user["lastName"] == "Ganesh"
    assert user["voiceSubscription"] is False
    assert user["email"] == "aron.hale@gmail.com"
    unknown = client.patch(patch["path"], params={"emailId": "nobody@example.com"}, json={})
    assert unknown.status_code == 401  # credentials are checked first
    unknown = client.patch(
        patch["path"], params={"emailId": "nobody@example.com"}, json={}, headers=basic()
    )
    shapes.error_shape(unknown.status_code, unknown.json(), 400)


def test_delete(client: TestClient) -> None:
    user_id = _create(client)
    fixture = shapes.load("audience_delete")
    response = client.post(fixture["path"].replace("{id}", user_id), headers=basic())
    shapes.check(fixture, response.status_code, response.json())


def test_import_is_queued_then_reported(client: TestClient) -> None:
    fixture = shapes.load("audience_import")
    csv = (
        "email,first name,last name,mobileNumber,lastActiveDate\n"
        "aron.hale@gmail.com,Aron,Hale,+14155550100,12/23/2018\n"
        "not-an-address,Bad,Row,,\n"
    )
    response = client.post(
        fixture["path"],
        params=fixture["query"],
        files={"file": ("users.csv", csv.encode(), "text/csv")},
        headers=basic(),
    )
    shapes.check(fixture, response.status_code, response.json())
    batch_id = response.json()["id"]
    # Nothing is imported until a worker runs the queued task.
    assert client.get("/api/v1/audience", headers=basic()).json()["total"] == 0
    one = shapes.load("batchinfo_status_one")
    queued = client.get(one["path"].replace("{id}", batch_id), headers=basic())
    shapes.check(one, queued.status_code, queued.json())
    assert queued.json()["state"] == "queued"

    import_upload(int(batch_id))  # what a worker runs
    done = client.get(one["path"].replace("{id}", batch_id), headers=basic())
    shapes.check(one, done.status_code, done.json())
    assert done.json()["state"] == "done" and done.json()["failed"] == 1
    assert done.json()["statusMessage"].startswith("Uploaded file has got errors")
    assert client.get("/api/v1/audience", headers=basic()).json()["total"] == 1

    listing = shapes.load("batchinfo_status_list")
    response = client.get(listing["path"], params=listing["query"], headers=basic())
    shapes.check(listing, response.status_code, response.json())
    errors = shapes.load("batchinfo_errors")
    response = client.get(
        errors["path"].replace("{id}", batch_id), params=errors["query"], headers=basic()
    )
    shapes.check(errors, response.status_code, response.json())
    assert "Line 3" in response.json()["Errors"][0]["errorMessage"]

    unknown = client.get("/api/v1/batchinfo/status/12345", headers=basic())
    shapes.error_shape(unknown.status_code, unknown.json(), 400)
    not_csv = client.post(
        fixture["path"], files={"file": ("x.csv", b"name\nx\n", "text/csv")}, headers=basic()
    )
    shapes.error_shape(not_csv.status_code, not_csv.json(), 400)
