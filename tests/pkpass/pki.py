"""Throwaway PKIs shaped like Apple's (root → WWDR-like CA → Pass Type ID) and pass builders."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from passpost.pkpass import sign
from passpost.pkpass.signer import PASS_TYPE_ID_OID

PASS_TYPE_ID = "pass.dev.passpost.pkpass-test"
TEAM_ID = "PKTEST1234"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SIGNED_AT = NOW - timedelta(days=30)
# CAs outlive any test run, so that tests signing at the real clock (openssl) keep working.
CA_VALIDITY = {
    "not_before": datetime(2000, 1, 1, tzinfo=UTC),
    "not_after": datetime(2099, 12, 31, tzinfo=UTC),
}
ICON_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@cache
def rsa_key(slot: int) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key per slot, generated once per test session (keygen is slow)."""
    del slot  # only distinguishes cache entries
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (cheap to make)."""
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str | None, *, uid: str | None = None, ou: str | None = None) -> x509.Name:
    """An X.509 name like Apple's: UID, CN, OU, O, C."""
    attrs = []
    if uid is not None:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, uid))
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "passpost tests"))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"))
    return x509.Name(attrs)


def certificate(
    subject: x509.Name,
    *,
    key: Any,
    issuer: x509.Certificate | None = None,
    issuer_key: Any = None,
    ca: bool | None = False,
    not_before: datetime = NOW - timedelta(days=365),
    not_after: datetime = NOW + timedelta(days=365),
    extensions: tuple[x509.ExtensionType, ...] = (),
    ski: bool = True,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    """One certificate; self-signed when ``issuer`` is None."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
    for extension in extensions:
        builder = builder.add_extension(extension, False)
    return builder.sign(issuer_key if issuer else key, hash_algorithm or hashes.SHA256())


def pass_type_extension(value: str) -> x509.UnrecognizedExtension:
    """Apple's Pass Type ID extension holding ``value`` as a DER UTF8String."""
    raw = value.encode()
    return x509.UnrecognizedExtension(PASS_TYPE_ID_OID, b"\x0c" + bytes([len(raw)]) + raw)


@dataclass
class Pki:
    """root → intermediate → leaf, and the leaf's key."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: Any
    intermediate_key: Any = field(repr=False, default=None)
    root_key: Any = field(repr=False, default=None)

    @property
    def anchors(self) -> list[x509.Certificate]:
        return [self.root]

    def pem(self, *certs: x509.Certificate) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def make_pki(
    *,
    pass_type_id: str = PASS_TYPE_ID,
    team_id: str = TEAM_ID,
    extension_value: str | None = PASS_TYPE_ID,
    uid: str | None = PASS_TYPE_ID,
    leaf_key: Any = None,
    leaf_not_before: datetime = NOW - timedelta(days=60),
    leaf_not_after: datetime = NOW + timedelta(days=300),
    leaf_ski: bool = True,
) -> Pki:
    """A fresh Apple-shaped chain; each argument bends one property of the leaf."""
    root_key, inter_key = rsa_key(0), rsa_key(1)
    root = certificate(name("pkpass Test Root CA"), key=root_key, ca=True)
    inter = certificate(
        name("pkpass Test WWDR CA", ou="G9"),
        key=inter_key,
        issuer=root,
        issuer_key=root_key,
        ca=True,
    )
    key = leaf_key if leaf_key is not None else rsa_key(2)
    extensions = () if extension_value is None else (pass_type_extension(extension_value),)
    leaf = certificate(
        name(f"Pass Type ID: {pass_type_id}", uid=uid, ou=team_id),
        key=key,
        issuer=inter,
        issuer_key=inter_key,
        not_before=leaf_not_before,
        not_after=leaf_not_after,
        extensions=extensions,
        ski=leaf_ski,
    )
    return Pki(root, inter, leaf, key, inter_key, root_key)


def pass_dict(**overrides: Any) -> dict[str, Any]:
    """A minimal valid eventTicket pass.json; ``None`` values remove a key."""
    body: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": PASS_TYPE_ID,
        "serialNumber": "SERIAL-0001",
        "teamIdentifier": TEAM_ID,
        "organizationName": "passpost tests",
        "description": "A test ticket",
        "eventTicket": {"primaryFields": [{"key": "event", "value": "Test"}]},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def pass_files(pass_json: dict[str, Any] | bytes | None = None, **extra: bytes) -> dict[str, bytes]:
    """pass.json + icon.png (+ extra files, name=bytes with '__' meaning '/')."""
    raw = (
        pass_json if isinstance(pass_json, bytes) else json.dumps(pass_json or pass_dict()).encode()
    )
    files = {"pass.json": raw, "icon.png": ICON_PNG}
    files.update({k.replace("__", "/"): v for k, v in extra.items()})
    return files


def signed(
    pki: Pki,
    files: dict[str, bytes] | None = None,
    *,
    embed_intermediate: bool = True,
    **options: Any,
) -> bytes:
    """A .pkpass made by ``passpost.pkpass.sign`` with the PKI's leaf."""
    options.setdefault("signing_time", SIGNED_AT)
    return sign(
        files if files is not None else pass_files(),
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate] if embed_intermediate else [],
        **options,
    )


def unzip(data: bytes) -> dict[str, bytes]:
    """Members of a ZIP, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A plain ZIP of ``members`` (in the order given)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return buffer.getvalue()
