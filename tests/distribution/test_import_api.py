"""The import call's contract: every bad input is a 4xx in the SPEC's shape and stores nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from passpost.db import session_scope
from passpost.distribution.models import Delivery, DistributionRequest, PassHolder
from passpost.passes.models import PassVersion, WalletPass
from tests.conftest import MakeClient
from tests.support.app import basic
from tests.support.passes import make_pki, shared_pki, signed_pass, zip_bytes
from tests.support.service import email_content

PKI = shared_pki()


@pytest.fixture
def client(client_with: MakeClient) -> TestClient:
    # No worker runs here: the queue is only written to.
    return client_with(max_upload_bytes=str(200_000))


def _counts(client: TestClient) -> tuple[int, ...]:
    from passpost.config import get_settings

    with session_scope(get_settings().resolved_database_url) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (WalletPass, PassVersion, DistributionRequest, PassHolder, Delivery)
        )


def _post(client: TestClient, pkpass: bytes | None, content: object, **kwargs: object):
    text = content if isinstance(content, str) else json.dumps(content)
    files: dict[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]] = {
        "passContent": (None, text)
    }
    if pkpass is not None:
        files["pkPass"] = ("p.pkpass", pkpass, "application/octet-stream")
    return client.post("/api/v1/message/pass/import", files=files, headers=basic(), **kwargs)


GOOD = email_content([{"email": "ada@example.com"}])


def _with_sender(address: str) -> dict[str, object]:
    content = email_content([{"email": "ada@example.com"}])
    content["passIntegrationConfig"]["passIssueNotificationDetails"][1]["senderEmail"] = address
    return content


def test_import_commits_pass_request_and_ledger(client: TestClient) -> None:
    response = _post(
        client,
        signed_pass(PKI, serial="S1"),
        email_content([{"email": "a@example.com"}, {"id": "424242"}]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "Request Queued. "
    assert _counts(client) == (1, 1, 1, 2, 2)
    # Re-import of the same serial: a new version of the same pass.
    again = _post(client, signed_pass(PKI, serial="S1", description="v2"), GOOD)
    assert again.status_code == 200
    assert int(again.json()["requestId"]) > int(response.json()["requestId"])
    assert _counts(client)[:3] == (1, 2, 2)


def test_passcontent_as_json_file_part(client: TestClient) -> None:
    files = {
        "pkPass": ("p.pkpass", signed_pass(PKI, serial="F1")),
        "passContent": ("content.json", json.dumps(GOOD).encode(), "application/json"),
    }
    response = client.post("/api/v1/message/pass/import", files=files, headers=basic())
    assert response.status_code == 200, response.text


def test_update_requires_an_existing_pass(client: TestClient) -> None:
    files = {"pkPass": ("p.pkpass", signed_pass(PKI, serial="NEW"))}
    response = client.post(
        "/api/v1/message/pass/import/update",
        files=files,
        data={"passContent": json.dumps(GOOD)},
        headers=basic(),
    )
    assert response.status_code == 404
    assert response.json()["errorCode"] == "PASS_NOT_FOUND"
    assert _counts(client) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("pkpass", "content", "status", "code"),
    [
        (None, GOOD, 400, "MISSING_PKPASS"),
        ("good", "{not json", 400, "INVALID_PASS_CONTENT_JSON"),
        ("good", "[1, 2]", 400, "INVALID_PASS_CONTENT"),
        ("good", email_content([]), 400, "NO_RECIPIENTS"),
        ("good", email_content([{"firstName": "x"}]), 400, "INVALID_RECIPIENT"),
        (
            "good",
            {
                **GOOD,
                "passIntegrationConfig": {"passIssueNotificationDetails": [{"channel": "FAX"}]},
            },
            400,
            "UNKNOWN_CHANNEL",
        ),
        (
            "good",
            {**GOOD, "startTimeStamp": 2_000_000_000_000, "endTimeStamp": 1_900_000_000_000},
            400,
            "INVALID_TIME_WINDOW",
        ),
        ("good", {**GOOD, "priority": "maybe"}, 400, "INVALID_PASS_CONTENT"),
        # Malformed input is a 400, never a 500 (issue 9, finding 5).
        ("good", {**GOOD, "startTimeStamp": 253402300800000}, 400, "INVALID_TIMESTAMP"),
        ("good", {**GOOD, "endTimeStamp": 1e16}, 400, "INVALID_TIMESTAMP"),
        ("good", {**GOOD, "endTimeStamp": 10**30}, 400, "INVALID_TIMESTAMP"),
        ("good", {**GOOD, "startTimeStamp": 99_999_999_999}, 400, "INVALID_TIMESTAMP"),
        ("good", {**GOOD, "startTimeStamp": -1}, 400, "INVALID_TIMESTAMP"),
        # str.isdigit() holds for "¹²" though int() refuses it (found by schemathesis).
        ("good", {**GOOD, "startTimeStamp": "\u00b9\u00b2"}, 400, "INVALID_PASS_CONTENT"),
        ("good", '{"recipients": ' + "[" * 5000 + "]" * 5000 + "}", 400, "JSON_TOO_DEEP"),
        ("good", '{"recipients": ' + "[" * 40 + "]" * 40 + "}", 400, "JSON_TOO_DEEP"),
        ("deep", GOOD, 400, "PASS_JSON_TOO_DEEP"),
        ("good", _with_sender("not-an-address"), 400, "INVALID_SENDER_EMAIL"),
        ("good", _with_sender("ops@localhost"), 400, "INVALID_SENDER_EMAIL"),
        (b"not a zip at all", GOOD, 400, "NOT_A_ZIP"),
        ("unsigned", GOOD, 400, "MANIFEST_MISSING"),
        ("untrusted", GOOD, 400, "SIGNATURE_UNTRUSTED"),
        (b"x" * 300_000, GOOD, 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_bad_input_is_a_4xx_and_stores_nothing(
    client: TestClient, pkpass: object, content: object, status: int, code: str
) -> None:
    data: bytes | None
    if pkpass == "good":
        data = signed_pass(PKI, serial="BAD")
    elif pkpass == "unsigned":
        data = _unsigned_valid()
    elif pkpass == "untrusted":
        data = signed_pass(make_pki(), serial="BAD")
    elif pkpass == "deep":
        data = signed_pass(PKI, serial="BAD", userInfo=_nested(900))
    else:
        data = pkpass  # type: ignore[assignment]
    response = _post(client, data, content)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["id"] == "-1" and body["errorCode"] == code and body["message"].endswith(".")
    assert _counts(client) == (0, 0, 0, 0, 0)


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = {"next": value}
    return value


def test_a_pass_as_deep_as_allowed_is_imported_and_its_content_served(
    client: TestClient,
) -> None:
    # pass.json itself is level 1: userInfo with 18 levels of objects makes 19 (the limit is 20).
    response = _post(client, signed_pass(PKI, serial="DEEP", userInfo=_nested(18)), GOOD)
    assert response.status_code == 200, response.text
    request_id = response.json()["requestId"]
    entry = client.get(f"/api/v1/pass/meta/{request_id}", headers=basic()).json()
    holder = entry["passRequests"][0]["id"]
    content = client.get(f"/api/v1/pass/{holder}/content", headers=basic())
    assert content.status_code == 200, content.text
    assert content.json()["passContent"]


def test_timestamps_at_the_edges_of_the_range_are_accepted(client: TestClient) -> None:
    for start, end in ((4_102_444_800_000, 0), (1_700_000_000, 4_102_444_800)):
        content = {**GOOD, "startTimeStamp": start, "endTimeStamp": end}
        response = _post(client, signed_pass(PKI, serial=f"T{start}"), content)
        assert response.status_code == 200, response.text


def _unsigned_valid() -> bytes:
    from tests.support.passes import ICON_PNG, pass_json

    return zip_bytes({"pass.json": json.dumps(pass_json()).encode(), "icon.png": ICON_PNG})


def test_not_multipart_is_415(client: TestClient) -> None:
    response = client.post("/api/v1/message/pass/import", json=GOOD, headers=basic())
    assert response.status_code == 415
    assert response.json()["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"


def test_malformed_multipart_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/message/pass/import",
        content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken",
        headers={**basic(), "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] in ("MALFORMED_MULTIPART", "MISSING_PKPASS")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/message/pass/import",
        "/api/v1/message/pass/import/update",
        "/api/v1/pass/cancel/1",
    ],
)
def test_management_calls_need_credentials(client: TestClient, path: str) -> None:
    assert client.post(path).status_code == 401
    assert client.post(path, headers=basic(password="wrong")).status_code == 401
    assert client.post(path, headers={"X-VoltMX-Authorization": "nope"}).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pass/meta/1",
        "/api/v1/pass/1/status",
        "/api/v1/pass/1/content",
        "/api/v1/requests/1",
    ],
)
def test_status_calls_need_credentials_and_known_ids(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    response = client.get(path, headers=basic())
    assert response.status_code == 404 and response.json()["errorCode"].endswith("NOT_FOUND")
    bad = client.get(path.replace("/1", "/abc"), headers=basic())
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_ID"


def test_metrics_count_the_ledger(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    recipients = [{"email": "a@example.com"}, {"id": "424242"}]
    assert (
        _post(client, signed_pass(PKI, serial="M1"), email_content(recipients)).status_code == 200
    )
    text = client.get("/metrics", headers=basic()).text
    assert 'passpost_deliveries{channel="EMAIL",state="queued"} 1.0' in text
    assert 'passpost_deliveries{channel="EMAIL",state="rejected"} 1.0' in text
    assert "passpost_requests_total 1.0" in text


def test_concurrent_imports_of_one_new_serial_make_versions(client: TestClient) -> None:
    """Four imports of the same new pass at once: one pass, four versions, no error."""
    from concurrent.futures import ThreadPoolExecutor

    from passpost.config import get_settings
    from passpost.distribution.schemas import parse_pass_content
    from passpost.distribution.service import import_pass

    settings = get_settings()
    uploads = [signed_pass(PKI, serial="RACE", description=f"v{n}") for n in range(4)]

    def one(upload: bytes) -> int:
        content = parse_pass_content(json.dumps(GOOD))
        # As the import call does: a writer transaction from the start.
        with session_scope(settings.resolved_database_url, write=True) as session:
            return import_pass(
                session, settings=settings, upload=upload, content=content, created_by="t"
            ).version

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(one, uploads))
    assert versions == [1, 2, 3, 4]
    assert _counts(client)[:3] == (1, 4, 4)


def test_api_key_works_on_writes_and_reads(client: TestClient) -> None:
    """An API key's last use is recorded on a POST (writer) and a GET (reader) alike."""
    from passpost.auth import service as auth_service
    from passpost.auth.models import ApiKey
    from passpost.config import get_settings

    url = get_settings().resolved_database_url
    with session_scope(url) as session:
        _, key = auth_service.create_api_key(session, name="ci")
    bearer = {"Authorization": f"Bearer {key}"}
    files = {
        "pkPass": ("p.pkpass", signed_pass(PKI, serial="KEY1")),
        "passContent": (None, json.dumps(GOOD)),
    }
    response = client.post("/api/v1/message/pass/import", files=files, headers=bearer)
    assert response.status_code == 200, response.text
    with session_scope(url) as session:
        assert session.scalar(select(ApiKey.last_used_at)) is not None
        session.execute(ApiKey.__table__.update().values(last_used_at=None))  # type: ignore[attr-defined]
    request_id = response.json()["requestId"]
    assert client.get(f"/api/v1/requests/{request_id}", headers=bearer).status_code == 200
    with session_scope(url) as session:
        assert session.scalar(select(ApiKey.last_used_at)) is not None


# -- findings reach the caller (issue 9, finding 9) --------------------------------------


def test_an_invalid_pass_lists_every_finding(client: TestClient) -> None:
    from tests.support.passes import ICON_PNG, pass_json

    body = pass_json(serialNumber="s" * 20_000, description=" ", formatVersion=2)
    upload = zip_bytes({"pass.json": json.dumps(body).encode(), "x" * 3 + ".png": ICON_PNG})
    response = _post(client, upload, GOOD)
    assert response.status_code == 400
    error = response.json()
    assert error["id"] == "-1" and error["message"].startswith("Invalid pass: ")
    assert error["errorCode"] == "PASS_FORMAT_VERSION_INVALID"  # the first, as before
    found = {(f["errorCode"], f["severity"]) for f in error["findings"]}
    assert found == {
        ("PASS_FORMAT_VERSION_INVALID", "error"),
        ("PASS_DESCRIPTION_BLANK", "warning"),
        ("PASS_VALUE_TOO_LONG", "error"),
        ("ICON_MISSING", "error"),
        ("MANIFEST_MISSING", "error"),
    }
    assert all(f["message"].endswith(".") for f in error["findings"])
    assert _counts(client) == (0, 0, 0, 0, 0)


def test_warnings_reach_the_caller_and_the_body_stays_the_originals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passpost.config import get_settings

    monkeypatch.setenv("PASSPOST_SIGNATURE_POLICY", "warn")
    get_settings.cache_clear()
    response = _post(client, signed_pass(make_pki(), serial="W1", description="  "), GOOD)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"requestId", "description"}
    codes = response.headers["X-Passpost-Warnings"].split(", ")
    assert "SIGNATURE_UNTRUSTED" in codes and "PASS_DESCRIPTION_BLANK" in codes
    details = client.get(f"/api/v1/requests/{response.json()['requestId']}", headers=basic())
    assert details.status_code == 200
    warnings = details.json()["warnings"]
    assert [w["errorCode"] for w in warnings] == codes
    assert all(w["severity"] == "warning" and w["message"] for w in warnings)


def test_a_clean_pass_has_no_warnings(client: TestClient) -> None:
    response = _post(client, signed_pass(PKI, serial="CLEAN"), GOOD)
    assert response.status_code == 200
    assert "X-Passpost-Warnings" not in response.headers
    details = client.get(f"/api/v1/requests/{response.json()['requestId']}", headers=basic())
    assert details.json()["warnings"] == []


def test_a_pass_counts_its_recipients_across_requests(client: TestClient) -> None:
    """The bound on its device registrations (issue 9, finding 10)."""
    from passpost.config import get_settings

    def recipients() -> int:
        with session_scope(get_settings().resolved_database_url) as session:
            return int(session.scalars(select(WalletPass.recipient_count)).one())

    two = email_content([{"email": "a@example.com"}, {"email": "b@example.com"}, {"id": "999"}])
    assert _post(client, signed_pass(PKI, serial="RC"), two).status_code == 200
    assert recipients() == 2  # the unknown id 999 is no recipient
    again = email_content([{"email": "b@example.com"}, {"email": "c@example.com"}])
    assert _post(client, signed_pass(PKI, serial="RC", description="v2"), again).status_code == 200
    assert recipients() == 3


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pass/meta/%C2%B9",
        "/api/v1/pass/meta/1/%C2%B9",
        "/api/v1/requests/%C2%B9%C2%B2",
        "/api/v1/pass/%C2%B9/status",
        "/api/v1/pass/%C2%B9/content",
    ],
)
def test_non_ascii_digits_in_ids_are_400(client: TestClient, path: str) -> None:
    response = client.get(path, headers=basic())
    assert response.status_code in (400, 404), response.text
    assert response.json()["id"] == "-1"


def test_a_recipient_id_of_non_ascii_digits_is_an_unknown_recipient(client: TestClient) -> None:
    content = email_content([{"id": "\u00b9"}, {"email": "ada@example.com"}])
    response = _post(client, signed_pass(PKI, serial="SUP"), content)
    assert response.status_code == 200, response.text
