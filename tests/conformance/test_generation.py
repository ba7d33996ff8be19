"""The generation call (SPEC §12): POST /api/v1/message/pass builds a valid pass from the
page's objects (fixture ``generation_pass_distribution.json``), one per recipient."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from passpost import pkpass
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import PassHolder
from passpost.passes.models import PassVersion, WalletPass
from tests.support.app import basic
from tests.support.passes import ICON_PNG, PASSPHRASE, TestPki, make_p12

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "generation_pass_distribution.json").read_text()
)


def _request(recipient: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(FIXTURE["request"])
    body["passServiceRequest"]["passes"]["pass"]["recipients"]["recipient"] = [recipient]
    return body


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return body["passServiceRequest"]["passes"]["pass"]["passContent"]


def _post(client: TestClient, body: dict[str, Any], **images: bytes) -> Any:
    images = images or {"iconImage": ICON_PNG, "logoImage": ICON_PNG}
    files = {name: (f"{name}.png", data, "image/png") for name, data in images.items()}
    return client.post(
        FIXTURE["path"], data={"passContent": json.dumps(body)}, files=files, headers=basic()
    )


def _recipient(client: TestClient) -> str:
    created = client.post(
        "/api/v1/audience",
        json={"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"},
        headers=basic(),
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def _upload_certificate(client: TestClient, pki: TestPki) -> None:
    answer = client.post(
        "/api/v1/passcerts",
        files={"passCert": ("p.p12", make_p12(pki), "application/x-pkcs12")},
        data={"passCertPassPhrase": PASSPHRASE, "certName": "test"},
        headers=basic(),
    )
    assert answer.status_code == 200, answer.text


def test_the_page_objects_make_a_valid_personal_pass(client: TestClient, pki: TestPki) -> None:
    rid = _recipient(client)
    body = _request({"id": rid, "fields": {"seat": "12A"}})
    refused = _post(client, body, iconImage=ICON_PNG, logoImage=ICON_PNG)
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == "NO_SIGNING_CERTIFICATE"

    _upload_certificate(client, pki)
    answer = _post(client, body, iconImage=ICON_PNG, logoImage=ICON_PNG)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"requestId", "description"}
    assert answer.json()["description"] == "Request Queued. "
    request_id = answer.json()["requestId"]
    (entry,) = client.get(f"/api/v1/pass/meta/{request_id}", headers=basic()).json()["passRequests"]
    serial = entry["serialNumber"]
    assert serial == f"FLIGHT-PP101-{entry['id']}"
    assert entry["barcodeMsg"] == serial
    content = client.get(f"/api/v1/pass/{entry['id']}/content", headers=basic())
    assert content.status_code == 200, content.text

    with session_scope(get_settings().resolved_database_url) as session:
        holder = session.get(PassHolder, int(entry["id"]))
        assert holder is not None and holder.personal_pass_id is not None
        wallet_pass = session.get(WalletPass, holder.personal_pass_id)
        assert wallet_pass is not None
        data = session.scalar(
            select(PassVersion.content).where(PassVersion.id == wallet_pass.latest_version_id)
        )
    assert data is not None
    report = pkpass.validate(data, trust_anchors=[pki.root], intermediates=[])
    assert report.ok, [f.to_dict() for f in report.findings]
    pass_json = report.pass_json or {}
    assert pass_json["serialNumber"] == serial
    assert pass_json["teamIdentifier"] == "TEAM123456"  # read from the certificate
    board = pass_json["boardingPass"]
    assert board["transitType"] == "PKTransitTypeAir"
    assert board["headerFields"] == [
        {"key": "gate", "label": "GATE", "value": "A1", "textAlignment": "PKTextAlignmentRight"}
    ]
    assert board["secondaryFields"][0]["value"] == "Ada Lovelace"
    assert board["secondaryFields"][1]["value"] == "12A"
    assert board["auxiliaryFields"][0]["value"] == "2026-11-27T09:40:00+01:00"
    assert board["auxiliaryFields"][0]["dateStyle"] == "PKDateStyleShort"
    assert board["auxiliaryFields"][1] == {
        "key": "fare",
        "label": "FARE",
        "value": 420.5,
        "currencyCode": "EUR",
    }
    assert board["backFields"][0]["key"] == "terms"
    assert pass_json["backgroundColor"] == "rgb(26, 43, 60)"
    assert pass_json["barcodes"][0] == {
        "format": "PKBarcodeFormatQR",
        "message": serial,
        "messageEncoding": "iso-8859-1",
        "altText": "12A",
    }
    assert pass_json["relevantDate"] == "2026-11-27T09:00:00+01:00"
    assert pass_json["expirationDate"] == "2026-11-28T07:00:00+01:00"
    assert pass_json["locations"][0]["relevantText"] == "Welcome to CDG"
    assert pass_json["userInfo"] == {"booking": "ABC123"}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {"icon.png", "logo.png", "fr.lproj/pass.strings"} <= set(archive.namelist())
        strings = archive.read("fr.lproj/pass.strings").decode()
    assert strings == '"GATE" = "PORTE";\n"PASSENGER" = "PASSAGER";\n'


def test_constants_ignore_case_and_unknown_ones_list_the_accepted(
    client: TestClient, pki: TestPki
) -> None:
    _upload_certificate(client, pki)
    rid = _recipient(client)
    body = _request({"id": rid, "fields": {"seat": "1"}})
    _content(body)["basicDetails"]["passType"] = "boardingpass"
    _content(body)["frontLayout"]["transitType"] = "PKTransitTypeTrain"
    assert _post(client, body).status_code == 200
    _content(body)["basicDetails"]["passType"] = "LOYALTY"
    answer = _post(client, body)
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "INVALID_PASS_CONTENT"
    message = answer.json()["message"]
    assert "basicDetails.passType" in message and "LOYALTY" in message
    for accepted in ("BOARDING", "COUPON", "EVENT_TICKET", "STORE_CARD", "GENERIC", "storeCard"):
        assert accepted in message


def test_image_urls_are_not_fetched_unless_their_host_is_allowed(
    client: TestClient, pki: TestPki
) -> None:
    _upload_certificate(client, pki)
    rid = _recipient(client)
    body = _request({"id": rid, "fields": {"seat": "1"}})
    _content(body)["appearance"]["images"] = [
        {"imageType": "ICON", "url": "http://169.254.169.254/latest/meta-data/"}
    ]
    answer = _post(client, body)
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "IMAGE_URL_NOT_ALLOWED"
    assert "PASSPOST_IMAGE_URL_HOSTS" in answer.json()["message"]


def test_a_pass_without_icon_is_refused(client: TestClient, pki: TestPki) -> None:
    _upload_certificate(client, pki)
    rid = _recipient(client)
    body = _request({"id": rid, "fields": {"seat": "1"}})
    _content(body)["appearance"]["images"] = []
    answer = client.post(FIXTURE["path"], json=body, headers=basic())
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "ICON_REQUIRED"


def test_the_constants_fixture_is_what_the_code_accepts() -> None:
    from passpost.passes.generation import CONSTANTS, DATE_FORMATS, parse_date

    fixture = json.loads(
        (Path(__file__).parent / "fixtures" / "generation_constants.json").read_text()
    )
    assert fixture["constants"] == {n: dict(c.values) for n, c in CONSTANTS.items()}
    assert fixture["dateFormats"] == list(DATE_FORMATS)
    example = fixture["dateExample"]
    assert parse_date(example["in"], "d", timezone=example["timezone"]) == example["out"]
    for name, constants in CONSTANTS.items():
        for accepted, passkit in constants.values.items():
            assert constants.map(accepted.lower(), name) == passkit


def test_update_pass_replaces_a_scheduled_request_only(client: TestClient, pki: TestPki) -> None:
    _upload_certificate(client, pki)
    rid = _recipient(client)
    body = _request({"id": rid, "fields": {"seat": "12A"}})
    later = 4_102_444_800_000  # 2100: scheduled, nothing sent
    body["passServiceRequest"]["passes"]["pass"]["startTimeStamp"] = later
    first = _post(client, body)
    assert first.status_code == 200, first.text
    update = copy.deepcopy(body["passServiceRequest"]["passes"]["pass"])
    update["recipients"]["recipient"] = [{"id": rid, "fields": {"seat": "14C"}}]
    files = {n: (f"{n}.png", ICON_PNG, "image/png") for n in ("iconImage", "logoImage")}
    updated = client.post(
        "/api/v1/message/pass/update",
        data={"passContent": json.dumps(update)},
        files=files,
        headers=basic(),
    )
    assert updated.status_code == 200, updated.text
    new_id = updated.json()["requestId"]
    assert new_id != first.json()["requestId"]
    old = client.get(f"/api/v1/requests/{first.json()['requestId']}", headers=basic())
    assert old.status_code == 404
    (entry,) = client.get(f"/api/v1/pass/meta/{new_id}", headers=basic()).json()["passRequests"]
    assert entry["barcodeAltMsg"] == "14C"

    # Once sending may have started, the Update Pass API refuses.
    update["startTimeStamp"] = 0
    now = client.post(
        "/api/v1/message/pass/update",
        data={"passContent": json.dumps(update)},
        files=files,
        headers=basic(),
    )
    assert now.status_code == 200, now.text
    again = client.post(
        "/api/v1/message/pass/update",
        data={"passContent": json.dumps(update)},
        files=files,
        headers=basic(),
    )
    assert again.status_code == 400
    assert again.json()["errorCode"] == "PASS_ALREADY_SENT"
