"""Throwaway certificate authorities and signed test passes, made with ``cryptography``."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID, ObjectIdentifier

PASS_TYPE_EXTENSION = ObjectIdentifier("1.2.840.113635.100.6.1.16")
TEAM_ID = "TEAM123456"
PASS_TYPE_ID = "pass.dev.passpost.test"
PASSPHRASE = "p12 secret phrase"

# A 1×1 PNG: Wallet needs icon.png; its pixels do not matter to the tests.
ICON_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class TestPki:
    """A root, an intermediate and a Pass Type ID leaf, like Apple's chain."""

    __test__ = False  # a fixture type, not a test class

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: Any
    root_key: Any
    intermediate_key: Any

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.root_pem())
        return path


def _name(cn: str, **extra: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if "uid" in extra:
        attrs.insert(0, x509.NameAttribute(NameOID.USER_ID, extra["uid"]))
    if "ou" in extra:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, extra["ou"]))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "passpost tests"))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"))
    return x509.Name(attrs)


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    signing_key: Any,
    *,
    ca: bool,
    not_before: datetime,
    days: int,
    extensions: list[x509.ExtensionType] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    for extension in extensions or []:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def make_pki(
    *,
    pass_type_id: str = PASS_TYPE_ID,
    team_id: str = TEAM_ID,
    ecdsa: bool = False,
    not_before: datetime | None = None,
    leaf_days: int = 365,
) -> TestPki:
    """A fresh chain: root CA → intermediate CA → Pass Type ID certificate."""
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if ecdsa
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    root_name = _name("passpost Test Root CA")
    inter_name = _name("passpost Test WWDR CA")
    root = _cert(
        root_name, root_name, root_key.public_key(), root_key, ca=True, not_before=start, days=3650
    )
    inter = _cert(
        inter_name,
        root_name,
        inter_key.public_key(),
        root_key,
        ca=True,
        not_before=start,
        days=3650,
    )
    leaf = _cert(
        _name(f"Pass Type ID: {pass_type_id}", uid=pass_type_id, ou=team_id),
        inter_name,
        leaf_key.public_key(),
        inter_key,
        ca=False,
        not_before=start,
        days=leaf_days,
        extensions=[
            x509.UnrecognizedExtension(
                PASS_TYPE_EXTENSION, b"\x0c" + bytes([len(pass_type_id)]) + pass_type_id.encode()
            )
        ],
    )
    return TestPki(root, inter, leaf, leaf_key, root_key, inter_key)


def make_p12(pki: TestPki, passphrase: str = PASSPHRASE, *, with_key: bool = True) -> bytes:
    """A .p12 as Keychain exports it: the leaf, its key, the intermediate."""
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(
        b"pass type id",
        pki.leaf_key if with_key else None,
        pki.leaf,
        [pki.intermediate],
        encryption,
    )


@cache
def shared_pki() -> TestPki:
    """The suite's one test PKI (the ``pki`` fixture); ``make_pki`` for a chain of one's own."""
    return make_pki()


def pass_json(
    *,
    serial: str = "SERIAL-1",
    pass_type_id: str = PASS_TYPE_ID,
    team_id: str = TEAM_ID,
    description: str = "Test pass",
    **extra: Any,
) -> dict[str, Any]:
    """A minimal valid generic pass.json."""
    body: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": pass_type_id,
        "serialNumber": serial,
        "teamIdentifier": team_id,
        "organizationName": "passpost tests",
        "description": description,
        "generic": {"primaryFields": [{"key": "name", "value": description}]},
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": f"code-{serial}",
                "messageEncoding": "iso-8859-1",
                "altText": serial,
            }
        ],
    }
    body.update(extra)
    return body


def signed_pass(pki: TestPki, **pass_fields: Any) -> bytes:
    """A complete .pkpass signed by ``pki``'s Pass Type ID certificate."""
    from passpost.pkpass import sign

    files = {
        "pass.json": json.dumps(pass_json(**pass_fields)).encode(),
        "icon.png": ICON_PNG,
    }
    return sign(
        files, certificate=pki.leaf, private_key=pki.leaf_key, intermediates=[pki.intermediate]
    )


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A plain ZIP with the given members (for building broken passes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def read_pass_json(data: bytes) -> dict[str, Any]:
    """The pass.json of a .pkpass's bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("pass.json"))
