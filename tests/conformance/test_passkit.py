"""The PassKit device calls and the log call, as the pages document them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conformance import shapes
from tests.conformance.conftest import AUTH_TOKEN, import_pass
from tests.support.passes import PASS_TYPE_ID, TestPki

DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APPLE = {"Authorization": f"ApplePass {AUTH_TOKEN}"}


def _path(fixture: dict[str, object], serial: str = "DEV-1") -> str:
    return (
        str(fixture["path"])
        .replace("{deviceLibraryIdentifier}", DEVICE)
        .replace("{passTypeIdentifier}", PASS_TYPE_ID)
        .replace("{serialNumber}", serial)
    )


def test_register_serials_unregister(client: TestClient, pki: TestPki) -> None:
    import_pass(client, pki, [{"email": "device@example.com"}], serial="DEV-1")
    register = shapes.load("device_register")
    sample = register["request"]["json"]
    first = client.post(_path(register), json=sample, headers=APPLE)
    # Deliberately different: a new registration answers 201, as Apple's protocol says.
    assert first.status_code == 201, first.text
    again = client.post(_path(register), json=sample, headers=APPLE)
    shapes.check(register, again.status_code, again.json())
    assert first.json() == again.json()

    missing = client.post(_path(register), json={}, headers=APPLE)
    shapes.error_shape(missing.status_code, missing.json(), 400)
    wrong = client.post(_path(register), json=sample, headers={"Authorization": "ApplePass nope"})
    shapes.error_shape(wrong.status_code, wrong.json(), 401)

    serials = shapes.load("device_serials")
    response = client.get(_path(serials))
    shapes.check(serials, response.status_code, response.json())
    assert response.json()["serialNumbers"] == ["DEV-1"]

    unregister = shapes.load("device_unregister")
    response = client.delete(_path(unregister), headers=APPLE)
    shapes.check(unregister, response.status_code, response.json())
    denied = client.delete(_path(unregister), headers={"Authorization": "ApplePass nope"})
    shapes.error_shape(denied.status_code, denied.json(), 401)


def test_log(client: TestClient) -> None:
    fixture = shapes.load("device_log")
    response = client.post(fixture["path"], json=fixture["request"]["json"])
    shapes.check(fixture, response.status_code, response.json())
    bad = client.post(fixture["path"], json={"logs": "not a list"})
    shapes.error_shape(bad.status_code, bad.json(), 400)


def test_latest_version(client: TestClient, pki: TestPki) -> None:
    import_pass(client, pki, [{"email": "latest@example.com"}], serial="DEV-2")
    fixture = shapes.load("device_latest_pass")
    path = _path(fixture, "DEV-2")
    response = client.get(path, headers=APPLE)
    assert response.status_code == fixture["response"]["status"]
    assert response.headers["content-type"] == fixture["response"]["contentType"]
    assert response.content[:2] == b"PK"  # the .pkpass file stream
    since = {**APPLE, "If-Modified-Since": response.headers["Last-Modified"]}
    assert client.get(path, headers=since).status_code == fixture["response"]["notModified"]
    wrong = client.get(path, headers={"Authorization": "ApplePass nope"})
    shapes.error_shape(wrong.status_code, wrong.json(), 401)
    # Deliberately different: an unknown serial is 401 too, so serials cannot be probed.
    unknown = client.get(_path(fixture, "NO-SUCH"), headers=APPLE)
    shapes.error_shape(unknown.status_code, unknown.json(), 401)
