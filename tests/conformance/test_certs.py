"""Pass certificate calls and the Apple WWDR certificate calls, as the pages document them."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from tests.conformance import shapes
from tests.support.app import basic
from tests.support.passes import PASS_TYPE_ID, PASSPHRASE, TEAM_ID, TestPki, make_p12


def _form(name: str) -> dict[str, str]:
    return {"passCertPassPhrase": PASSPHRASE, "certName": name}


def test_create_list_get_modify_delete(client: TestClient, pki: TestPki) -> None:
    p12 = make_p12(pki)
    create = shapes.load("passcerts_create")
    response = client.post(
        create["path"],
        files={"passCert": ("passbook41.p12", p12, "application/x-pkcs12")},
        data=_form("Pass Certificate 41"),
        headers=basic(),
    )
    shapes.check(create, response.status_code, response.json())
    cert_id = response.json()["id"]
    not_multipart = client.post(create["path"], json={"certName": "x"}, headers=basic())
    assert not_multipart.status_code in (400, 415), not_multipart.text

    listing = shapes.load("passcerts_list")
    response = client.get(listing["path"], params=listing["query"], headers=basic())
    shapes.check(listing, response.status_code, response.json())
    entry = response.json()["certificates"][0]
    assert entry["identifier"] == PASS_TYPE_ID and entry["teamIdentifier"] == TEAM_ID
    assert entry["fileName"] == "passbook41.p12" and entry["name"] == "Pass Certificate 41"
    # Deliberately different: the passphrase and the key never leave passpost.
    assert entry["password"] == "" and entry["certUrl"] == ""
    page = client.get(listing["path"], params={"start": 1, "pageSize": 10}, headers=basic())
    assert page.json()["total"] == 1 and page.json()["certificates"] == []

    get = shapes.load("passcerts_get")
    response = client.get(get["path"].replace("{id}", cert_id), headers=basic())
    shapes.check(get, response.status_code, response.json())

    modify = shapes.load("passcerts_modify")
    response = client.post(
        modify["path"].replace("{id}", cert_id),
        files={"passCert": ("renewed.p12", p12, "application/x-pkcs12")},
        data=_form("Renewed"),
        headers=basic(),
    )
    shapes.check(modify, response.status_code, response.json())
    renamed = client.get(f"/api/v1/passcerts/{cert_id}", headers=basic()).json()
    assert renamed["name"] == "Renewed" and renamed["fileName"] == "renewed.p12"
    assert renamed["updatedBy"] == "ops" and renamed["updatedDateStr"]
    only_name = client.post(
        f"/api/v1/passcerts/{cert_id}", data={"certName": "Just a name"}, headers=basic()
    )
    assert only_name.status_code == 200, only_name.text

    delete = shapes.load("passcerts_delete")
    response = client.delete(delete["path"].replace("{id}", cert_id), headers=basic())
    shapes.check(delete, response.status_code, response.json())
    assert response.json()["id"] == cert_id


def test_wwdr_get_and_update(client: TestClient, pki: TestPki) -> None:
    get = shapes.load("wwdr_get")
    response = client.get(get["path"], headers=basic())
    shapes.check(get, response.status_code, response.json())
    assert response.json()["subjectDN"]["subjectOU"] == "G4"  # the bundled WWDR G4

    update = shapes.load("wwdr_update")
    response = client.post(
        update["path"],
        files={"appleCert": ("wwdr.cer", pki.intermediate.public_bytes(Encoding.DER))},
        headers=basic(),
    )
    shapes.check(update, response.status_code, response.json())
    current = client.get(get["path"], headers=basic()).json()
    common_name = pki.intermediate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert current["subjectDN"]["subjectCN"] == common_name
