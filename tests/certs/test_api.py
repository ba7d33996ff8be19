"""``/api/v1/passcerts``: upload, list, read, delete; the WWDR intermediate; secrets at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from passpost import secrets
from passpost.certs.models import PassCertificate
from passpost.db import session_scope
from tests.support.app import basic
from tests.support.passes import PASS_TYPE_ID, PASSPHRASE, TEAM_ID, TestPki, make_p12, zip_bytes

DER = serialization.Encoding.DER


def upload(
    client: TestClient, data: bytes, passphrase: str = PASSPHRASE, name: str = "Main"
) -> object:
    return client.post(
        "/api/v1/passcerts",
        files={"passCert": ("pass.p12", data, "application/x-pkcs12")},
        data={"passCertPassPhrase": passphrase, "certName": name},
        headers=basic(),
    )


def test_upload_reads_pass_type_team_and_expiry(
    client: TestClient, p12: bytes, pki: TestPki
) -> None:
    response = upload(client, p12)
    assert response.status_code == 200, response.text
    cert = response.json()["passCert"]
    assert response.json()["id"] == cert["id"]
    assert cert["certName"] == "Main"
    assert cert["passTypeIdentifier"] == PASS_TYPE_ID
    assert cert["teamIdentifier"] == TEAM_ID
    assert datetime.fromisoformat(cert["notAfter"]) == pki.leaf.not_valid_after_utc
    assert cert["expired"] is False
    assert cert["createdBy"] == "ops"


def test_secrets_are_never_returned_and_encrypted_at_rest(
    client: TestClient, p12: bytes, database_url: str
) -> None:
    created = upload(client, p12)
    cert_id = created.json()["id"]
    answers = [
        created.text,
        client.get("/api/v1/passcerts", headers=basic()).text,
        client.get(f"/api/v1/passcerts/{cert_id}", headers=basic()).text,
    ]
    for text in answers:
        assert PASSPHRASE not in text
        assert "PRIVATE KEY" not in text
        assert "passphrase" not in text.lower()
    with session_scope(database_url) as session:
        row = session.scalars(select(PassCertificate)).one()
        assert "PRIVATE KEY" not in row.private_key_enc
        assert PASSPHRASE not in row.passphrase_enc
        assert secrets.decrypt(row.passphrase_enc).decode() == PASSPHRASE
        assert b"PRIVATE KEY" in secrets.decrypt(row.private_key_enc)


def test_list_get_delete(client: TestClient, p12: bytes) -> None:
    first = upload(client, p12, name="one").json()["id"]
    second = upload(client, p12, name="two").json()["id"]
    listed = client.get("/api/v1/passcerts", headers=basic()).json()
    assert listed["total"] == 2
    assert [c["certName"] for c in listed["certificates"]] == ["two", "one"]
    assert client.get(f"/api/v1/passcerts/{first}", headers=basic()).json()["certName"] == "one"
    deleted = client.delete(f"/api/v1/passcerts/{first}", headers=basic())
    assert deleted.status_code == 200
    missing = client.get(f"/api/v1/passcerts/{first}", headers=basic())
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "PASS_CERT_NOT_FOUND"
    assert client.delete(f"/api/v1/passcerts/{first}", headers=basic()).status_code == 404
    assert client.get("/api/v1/passcerts", headers=basic()).json()["total"] == 1
    assert client.get(f"/api/v1/passcerts/{second}", headers=basic()).status_code == 200
    assert client.get("/api/v1/passcerts/abc", headers=basic()).status_code == 400
    assert client.get(f"/api/v1/passcerts/{2**70}", headers=basic()).status_code == 400


def test_empty_passphrase_p12(client: TestClient, pki: TestPki) -> None:
    response = upload(client, make_p12(pki, ""), passphrase="")
    assert response.status_code == 200, response.text


def _plain_cert_p12() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, PASS_TYPE_ID),
            x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: not a pass cert"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(
        b"x", key, cert, None, serialization.BestAvailableEncryption(PASSPHRASE.encode())
    )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong passphrase", "INVALID_P12_PASSPHRASE"),
        ("random bytes", "INVALID_P12"),
        ("a zip", "INVALID_P12"),
        ("a PEM certificate", "INVALID_P12"),
        ("empty", "INVALID_P12"),
        ("no key", "P12_NO_KEY"),
        ("not a pass type certificate", "NOT_PASS_TYPE_CERTIFICATE"),
    ],
)
def test_bad_uploads_are_400_with_an_error_code(
    client: TestClient, pki: TestPki, p12: bytes, case: str, code: str
) -> None:
    data, passphrase = {
        "wrong passphrase": (p12, "not the passphrase"),
        "random bytes": (b"\x30\x82" + bytes(range(256)) * 4, PASSPHRASE),
        "a zip": (zip_bytes({"pass.json": b"{}"}), PASSPHRASE),
        "a PEM certificate": (pki.leaf.public_bytes(serialization.Encoding.PEM), PASSPHRASE),
        "empty": (b"", PASSPHRASE),
        "no key": (make_p12(pki, with_key=False), PASSPHRASE),
        "not a pass type certificate": (_plain_cert_p12(), PASSPHRASE),
    }[case]
    response = upload(client, data, passphrase=passphrase)
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == code
    assert client.get("/api/v1/passcerts", headers=basic()).json()["total"] == 0


def test_missing_parts_are_400(client: TestClient, p12: bytes) -> None:
    no_name = client.post(
        "/api/v1/passcerts",
        files={"passCert": ("pass.p12", p12)},
        data={"passCertPassPhrase": PASSPHRASE},
        headers=basic(),
    )
    assert no_name.status_code == 400
    no_file = client.post(
        "/api/v1/passcerts", data={"certName": "x", "passCertPassPhrase": "y"}, headers=basic()
    )
    assert no_file.status_code == 400


def test_every_call_needs_an_operator(client: TestClient, p12: bytes) -> None:
    calls = [
        ("post", "/api/v1/passcerts"),
        ("get", "/api/v1/passcerts"),
        ("get", "/api/v1/passcerts/1"),
        ("delete", "/api/v1/passcerts/1"),
        ("get", "/api/v1/passcerts/applewwrdc"),
        ("post", "/api/v1/passcerts/applewwrdc"),
    ]
    for method, path in calls:
        assert client.request(method, path).status_code == 401, (method, path)


def test_wwdr_defaults_to_the_bundled_g4_and_can_be_replaced(
    client: TestClient, pki: TestPki
) -> None:
    default = client.get("/api/v1/passcerts/applewwrdc", headers=basic())
    assert default.status_code == 200
    assert default.json()["source"] == "bundled"
    assert "OU=G4" in default.json()["subject"]
    assert "Worldwide Developer Relations" in default.json()["subject"]
    response = client.post(
        "/api/v1/passcerts/applewwrdc",
        files={"wwdrCert": ("wwdr.cer", pki.intermediate.public_bytes(DER))},
        headers=basic(),
    )
    assert response.status_code == 200, response.text
    current = client.get("/api/v1/passcerts/applewwrdc", headers=basic()).json()
    assert current["source"] == "uploaded"
    assert current["sha256"] == pki.intermediate.fingerprint(hashes.SHA256()).hex()
    loaded = x509.load_pem_x509_certificate(current["pem"].encode())
    assert loaded == pki.intermediate


@pytest.mark.parametrize(
    ("content", "code"), [("leaf", "NOT_CA_CERTIFICATE"), ("junk", "INVALID_CERTIFICATE")]
)
def test_wwdr_upload_must_be_a_ca_certificate(
    client: TestClient, pki: TestPki, content: str, code: str
) -> None:
    data = pki.leaf.public_bytes(DER) if content == "leaf" else b"not a certificate"
    response = client.post(
        "/api/v1/passcerts/applewwrdc", files={"file": ("x.cer", data)}, headers=basic()
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == code
    assert client.get("/api/v1/passcerts/applewwrdc", headers=basic()).json()["source"] == "bundled"


def test_wwdr_upload_without_a_file_is_400(client: TestClient) -> None:
    no_file = {"note": (None, b"no file")}  # a multipart field, not a file
    response = client.post("/api/v1/passcerts/applewwrdc", files=no_file, headers=basic())
    assert response.status_code == 400
    assert response.json()["errorCode"] == "MISSING_FILE"
    # Not multipart at all: the same code as every other upload.
    response = client.post(
        "/api/v1/passcerts/applewwrdc", data={"note": "no file"}, headers=basic()
    )
    assert response.status_code == 415
    assert response.json()["errorCode"] == "UNSUPPORTED_MEDIA_TYPE"
