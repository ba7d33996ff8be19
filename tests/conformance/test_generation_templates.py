"""Pass templates (SPEC §12): create with images, list, get, modify, delete, export, import,
and a generated pass using a template image by ``imageId``."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.support.app import basic
from tests.support.passes import ICON_PNG, PASSPHRASE, TestPki, make_p12

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "generation_pass_distribution.json").read_text()
)
PASS = FIXTURE["request"]["passServiceRequest"]["passes"]["pass"]


def payload(name: str = "Boarding") -> dict[str, Any]:
    return {
        "name": name,
        "passIntegrationConfig": copy.deepcopy(PASS["passIntegrationConfig"]),
        "passContent": copy.deepcopy(PASS["passContent"]),
    }


def create(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/templates/passbook",
        data={"passTemplatePayload": json.dumps(body)},
        files={
            "iconImage": ("icon.png", ICON_PNG, "image/png"),
            "logoImage": ("logo.png", ICON_PNG, "image/png"),
        },
        headers=basic(),
    )


def test_template_lifecycle(client: TestClient, pki: TestPki) -> None:
    made = create(client, payload())
    assert made.status_code == 200, made.text
    template_id = made.json()["id"]
    assert made.json()["message"] == "Pass template added successfully."
    assert create(client, payload()).json()["errorCode"] == "TEMPLATE_NAME_TAKEN"

    one = client.get(f"/api/v1/templates/passbook/{template_id}", headers=basic()).json()
    images = one["passContent"]["appearance"]["images"]
    assert all(i["imageId"] and "imageFieldName" not in i for i in images)
    listed = client.get("/api/v1/templates/passbook", headers=basic()).json()
    assert [t["id"] for t in listed["passtemplates"]] == [template_id]

    # A generated pass takes its images from the template by imageId.
    client.post(
        "/api/v1/passcerts",
        files={"passCert": ("p.p12", make_p12(pki), "application/x-pkcs12")},
        data={"passCertPassPhrase": PASSPHRASE, "certName": "t"},
        headers=basic(),
    )
    request = copy.deepcopy(FIXTURE["request"])
    generated = request["passServiceRequest"]["passes"]["pass"]
    generated["passContent"] = one["passContent"]
    generated["recipients"]["recipient"] = [{"email": "ada@example.com", "fields": {"seat": "1"}}]
    generated["passContent"]["frontLayout"]["secondaryFields"][0]["data"] = "Ada"
    sent = client.post("/api/v1/message/pass", json=request, headers=basic())
    assert sent.status_code == 200, sent.text

    changed = payload("Boarding v2")
    changed["passContent"]["appearance"]["images"] = [images[0]]
    modified = client.put(
        f"/api/v1/templates/passbook/{template_id}", json=changed, headers=basic()
    )
    assert modified.status_code == 200, modified.text
    again = client.get(f"/api/v1/templates/passbook/{template_id}", headers=basic()).json()
    assert again["name"] == "Boarding v2"
    assert again["passContent"]["appearance"]["images"] == [images[0]]

    exported = client.get(
        "/api/v1/templates/pass/export", params={"exportAll": "true"}, headers=basic()
    )
    assert exported.status_code == 200
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        (name,) = archive.namelist()
        document = json.loads(archive.read(name))
    assert list(document["images"]) == [images[0]["imageId"]]

    deleted = client.delete(f"/api/v1/templates/passbook/{template_id}", headers=basic())
    assert deleted.json() == {"id": template_id, "message": "Pass template deleted successfully."}
    gone = client.get(f"/api/v1/templates/passbook/{template_id}", headers=basic())
    assert gone.status_code == 400 and gone.json()["errorCode"] == "TEMPLATE_NOT_FOUND"

    imported = client.post(
        "/api/v1/templates/pass/import",
        files={"file": ("t.zip", exported.content, "application/zip")},
        headers=basic(),
    )
    assert imported.status_code == 200, imported.text
    (new_id,) = imported.json()["ids"]
    restored = client.get(f"/api/v1/templates/passbook/{new_id}", headers=basic()).json()
    assert restored["name"] == "Boarding v2"
    assert restored["passContent"]["appearance"]["images"][0]["imageId"]


def test_a_template_with_an_unknown_constant_is_refused(client: TestClient) -> None:
    body = payload()
    body["passContent"]["frontLayout"]["barcodeDetails"]["barcodeType"] = "DATAMATRIX"
    answer = create(client, body)
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "INVALID_PASS_CONTENT"
    assert "QR" in answer.json()["message"] and "DATAMATRIX" in answer.json()["message"]


def test_a_broken_template_export_is_a_400_and_imports_nothing(client: TestClient) -> None:
    assert create(client, payload()).status_code == 200
    exported = client.get(
        "/api/v1/templates/pass/export", params={"exportAll": "true"}, headers=basic()
    ).content
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        (name,) = archive.namelist()
        document = json.loads(archive.read(name))
    image_id = next(iter(document["images"]))

    def export_of(member: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, member)
        return buffer.getvalue()

    broken = [
        b"{not json",
        json.dumps({**document, "name": "B1", "images": ["a list"]}).encode(),
        json.dumps({**document, "name": "B2", "images": {image_id: "not base64!"}}).encode(),
        json.dumps({**document, "name": "B3", "images": {image_id: 42}}).encode(),
    ]
    for member in broken:
        answer = client.post(
            "/api/v1/templates/pass/import",
            files={"file": ("t.zip", export_of(member), "application/zip")},
            headers=basic(),
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["errorCode"] == "INVALID_EXPORT"
    listed = client.get("/api/v1/templates/passbook", headers=basic()).json()
    assert len(listed["passtemplates"]) == 1


def test_an_image_id_of_non_ascii_digits_is_no_image(client: TestClient) -> None:
    from passpost.config import get_settings
    from passpost.db import session_scope
    from passpost.templates.service import image_content

    with session_scope(get_settings().resolved_database_url) as session:
        assert image_content(session, "²") is None  # str.isdigit() says yes; int() refuses
        assert image_content(session, "١٢") is None
