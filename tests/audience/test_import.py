"""CSV bulk import over the real app: upsert by e-mail, row errors, whole-file errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from passpost.audience.tasks import import_upload
from passpost.config import get_settings
from tests.support.app import basic

AUTH = basic()


def _upload(client: TestClient, data: bytes, name: str = "people.csv") -> Any:
    return client.post(
        "/api/v1/audience/import", files={"file": (name, data, "text/csv")}, headers=AUTH
    )


def _import(client: TestClient, data: bytes) -> dict[str, Any]:
    """Upload, run the queued import as a worker does, return status + row errors."""
    response = _upload(client, data)
    assert response.status_code == 200, response.text
    batch_id = response.json()["id"]
    import_upload(int(batch_id))
    report: dict[str, Any] = client.get(f"/api/v1/batchinfo/status/{batch_id}", headers=AUTH).json()
    errors = client.get(f"/api/v1/batchinfo/errors/{batch_id}?pageSize=1000", headers=AUTH).json()
    report["errors"] = errors["Errors"]
    return report


def _everyone(client: TestClient) -> dict[str, dict[str, Any]]:
    body = client.get("/api/v1/audience?pageSize=1000", headers=AUTH).json()
    return {r["email"] or r["mobileNumber"]: r for r in body["audience"]}


def test_good_and_bad_rows(client: TestClient) -> None:
    existing = client.post(
        "/api/v1/audience",
        json={"email": "known@example.com", "firstName": "Before", "state": "TX"},
        headers=AUTH,
    ).json()["id"]
    csv = (
        b"First Name,LASTNAME,email,mobile_number,smsSubscription,Favourite Colour\n"  # row 1
        b"Ada,Lovelace,ada@example.com,(202) 555-0143,yes,green\n"  # 2 created
        b"After,,KNOWN@example.com,,no,\n"  # 3 updates the existing one
        b"Bad,Mail,not-an-email,,,\n"  # 4 INVALID_EMAIL
        b"Bad,Phone,phone@example.com,12345,,\n"  # 5 INVALID_MOBILE_NUMBER
        b",,,,,\n"  # 6 blank: skipped
        b"No,Contact,,,,\n"  # 7 MISSING_CONTACT
        b"Bad,Flag,flag@example.com,,perhaps,\n"  # 8 INVALID_FLAG
        b"Only,Mobile,,+44 20 7946 0958,,\n"  # 9 created by mobile
        b"Ada,Again,ADA@example.com,,,\n"  # 10 same e-mail as row 2: updates it
        b"Too,Many,many@example.com,,,,extra\n"  # 11 CSV_ROW_LENGTH
    )
    report = _import(client, csv)
    assert report["state"] == "done"
    assert report["total"] == 9  # the blank row is not counted
    assert (report["created"], report["updated"], report["failed"]) == (2, 2, 5)
    assert [(e["row"], e["errorCode"]) for e in report["errors"]] == [
        (4, "INVALID_EMAIL"),
        (5, "INVALID_MOBILE_NUMBER"),
        (7, "MISSING_CONTACT"),
        (8, "INVALID_FLAG"),
        (11, "CSV_ROW_LENGTH"),
    ]
    assert all(e["message"] for e in report["errors"])
    assert report["ignoredColumns"] == ["Favourite Colour"]

    people = _everyone(client)
    assert set(people) == {"ada@example.com", "known@example.com", "+442079460958"}
    ada = people["ada@example.com"]
    assert (ada["firstName"], ada["lastName"]) == ("Ada", "Again")
    assert ada["mobileNumber"] == "+12025550143" and ada["smsSubscription"] is True
    known = people["known@example.com"]
    assert known["id"] == existing
    # Empty cells leave stored values alone.
    assert (known["firstName"], known["state"], known["smsSubscription"]) == ("After", "TX", False)
    assert people["+442079460958"]["emailSubscription"] is True


def test_reimport_updates_by_email_and_mobile(client: TestClient) -> None:
    first = b"email,mobileNumber,firstName\nx@example.com,,One\n,2025550143,Two\n"
    assert _import(client, first)["created"] == 2
    again = b"EMAIL,MOBILENUMBER,FIRSTNAME\nX@Example.com,,Uno\n,+1 202 555 0143,Dos\n"
    report = _import(client, again)
    assert (report["created"], report["updated"], report["failed"]) == (0, 2, 0)
    people = _everyone(client)
    assert people["x@example.com"]["firstName"] == "Uno"
    assert people["+12025550143"]["firstName"] == "Dos"


def test_semicolons_and_a_bom(client: TestClient) -> None:
    data = "\ufeffEmail;First Name;Country\nzoë@example.com;Zoë;Österreich\n".encode()
    report = _import(client, data)
    assert report["created"] == 1, report
    person = _everyone(client)["zoë@example.com"]
    assert (person["firstName"], person["country"]) == ("Zoë", "Österreich")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "CSV_EMPTY"),
        (b"\n\n", "CSV_EMPTY"),
        (b"firstName,lastName\nA,B\n", "CSV_NO_CONTACT_COLUMN"),
        (b"email,EMAIL\na@example.com,b@example.com\n", "CSV_DUPLICATE_COLUMN"),
        (b"email,firstName\nok@example.com,A\nlatin1@example.com,\xe9t\xe9\n", "CSV_ENCODING"),
        (b'email,firstName\nok@example.com,"unterminated\nnext@example.com,B\n', "CSV_MALFORMED"),
        (b'email,firstName\nok@example.com,"a"b\n', "CSV_MALFORMED"),
    ],
)
def test_unreadable_files_store_nothing(client: TestClient, data: bytes, code: str) -> None:
    response = _upload(client, data)
    if response.status_code == 400:  # the header or the first row already shows it
        assert response.json()["errorCode"] == code
    else:  # further down: the worker finds it, and the whole file is refused
        batch_id = response.json()["id"]
        import_upload(int(batch_id))
        status = client.get(f"/api/v1/batchinfo/status/{batch_id}", headers=AUTH).json()
        assert status["state"] == "failed"
        errors = client.get(f"/api/v1/batchinfo/errors/{batch_id}", headers=AUTH).json()
        assert errors["Errors"][0]["errorCode"] == code
    assert client.get("/api/v1/audience", headers=AUTH).json()["total"] == 0


def test_upload_errors(client: TestClient) -> None:
    not_multipart = client.post(
        "/api/v1/audience/import",
        content=b"email\na@example.com\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert not_multipart.status_code == 415
    wrong_part = client.post(
        "/api/v1/audience/import",
        files={"upload": ("a.csv", b"email\na@example.com\n", "text/csv")},
        headers=AUTH,
    )
    assert wrong_part.status_code == 400 and wrong_part.json()["errorCode"] == "MISSING_FILE"
    # The same codes as the pass import's: 415 UNSUPPORTED_MEDIA_TYPE, 400 MALFORMED_MULTIPART.
    assert not_multipart.json()["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
    broken = client.post(
        "/api/v1/audience/import",
        content=b"--xyz\r\nContent-Disposition: form-data; name=file\r\n\r\nemail\r\n--xyz--",
        headers={**AUTH, "Content-Type": "multipart/form-data"},  # no boundary
    )
    assert broken.status_code == 400 and broken.json()["errorCode"] == "MALFORMED_MULTIPART"


def test_size_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, settings_env: Path
) -> None:
    monkeypatch.setenv("PASSPOST_MAX_UPLOAD_BYTES", "1000")
    get_settings.cache_clear()
    data = b"email\n" + b"".join(f"user{i}@example.com\n".encode() for i in range(100))
    response = _upload(client, data)
    assert response.status_code == 413
    assert response.json()["errorCode"] == "PAYLOAD_TOO_LARGE"


def test_many_rows(client: TestClient) -> None:
    """More rows than one chunk, with a duplicate e-mail across chunks."""
    lines = ["email,firstName"] + [f"bulk{i}@example.com,N{i}" for i in range(1200)]
    lines.append("bulk3@example.com,Last")
    report = _import(client, ("\n".join(lines) + "\n").encode())
    assert (report["total"], report["created"], report["updated"]) == (1201, 1200, 1)
    body = client.get("/api/v1/audience?start=3&pageSize=1", headers=AUTH).json()
    assert body["total"] == 1200
    assert body["audience"][0]["firstName"] == "Last"
