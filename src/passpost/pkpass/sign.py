"""``sign``: build a .pkpass (manifest + detached CMS signature) from files, a cert and key."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from passpost.pkpass.archive import unsafe_name
from passpost.pkpass.cms import HASHES
from passpost.pkpass.errors import PkpassError
from passpost.pkpass.manifest import UNSIGNED_NAMES, build_manifest

Digest = Literal["sha1", "sha256"]
SignerIdentifier = Literal["issuer_serial", "subject_key_identifier"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def sign(
    files: Mapping[str, bytes],
    *,
    certificate: x509.Certificate,
    private_key: PrivateKeyTypes,
    intermediates: Sequence[x509.Certificate] = (),
    signing_time: datetime | None = None,
    digest: Digest = "sha256",
    manifest_digest: Digest = "sha1",
    signer_identifier: SignerIdentifier = "issuer_serial",
) -> bytes:
    """A complete .pkpass: ``files`` + manifest.json + a detached CMS signature over it.

    Any manifest.json/signature in ``files`` is replaced. Defaults follow Apple's signpass:
    SHA-1 manifest, SHA-256 CMS digest, issuer+serial signer, signingTime = now.
    """
    content = {name: data for name, data in files.items() if name not in UNSIGNED_NAMES}
    for name in content:
        if unsafe_name(name) or name.endswith("/"):
            raise PkpassError("SIGN_INVALID_INPUT", f"{name!r} is not a safe file name for a pass.")
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PkpassError("SIGN_INVALID_INPUT", "The private key must be RSA or EC.")
    if _spki(private_key.public_key()) != _spki(certificate.public_key()):
        raise PkpassError("SIGN_INVALID_INPUT", "The private key does not match the certificate.")
    when = (signing_time or datetime.now(UTC)).astimezone(UTC)
    manifest = build_manifest(content, digest=manifest_digest)
    signature = signed_data(
        manifest,
        certificate=certificate,
        private_key=private_key,
        intermediates=intermediates,
        signing_time=when,
        digest=digest,
        signer_identifier=signer_identifier,
    )
    return _zip({**content, "manifest.json": manifest, "signature": signature}, when)


def sign_folder(path: str | Path, **options: Any) -> bytes:
    """``sign`` the files of a pass folder (hidden files such as .DS_Store are left out)."""
    root = Path(path)
    files = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    return sign(files, **options)


def signed_data(
    content: bytes,
    *,
    certificate: x509.Certificate,
    private_key: PrivateKey,
    intermediates: Sequence[x509.Certificate] = (),
    signing_time: datetime,
    digest: Digest = "sha256",
    signer_identifier: SignerIdentifier = "issuer_serial",
) -> bytes:
    """DER of a detached CMS SignedData over ``content`` with signed attributes."""
    cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    if signer_identifier == "issuer_serial":
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value=cms.IssuerAndSerialNumber(
                {"issuer": cert.issuer, "serial_number": cert.serial_number}
            ),
        )
        version = "v1"
    else:
        if cert.key_identifier is None:
            raise PkpassError(
                "SIGN_INVALID_INPUT", "The certificate has no SubjectKeyIdentifier extension."
            )
        sid = cms.SignerIdentifier(name="subject_key_identifier", value=cert.key_identifier)
        version = "v3"
    attributes = [
        _attr("content_type", cms.ContentType("data")),
        _attr("signing_time", _time(signing_time)),
        _attr("message_digest", core.OctetString(hashlib.new(digest, content).digest())),
    ]
    # DER orders a SET OF by encoding; verifiers (OpenSSL) re-encode it that way before checking.
    attrs = cms.CMSAttributes(sorted(attributes, key=lambda a: a.dump()))
    to_sign = b"\x31" + attrs.dump()[1:]
    if isinstance(private_key, rsa.RSAPrivateKey):
        value = private_key.sign(to_sign, padding.PKCS1v15(), HASHES[digest]())
        algorithm = f"{digest}_rsa"
    else:
        value = private_key.sign(to_sign, ec.ECDSA(HASHES[digest]()))
        algorithm = f"{digest}_ecdsa"
    signer_info = cms.SignerInfo(
        {
            "version": "v3" if version == "v3" else "v1",
            "sid": sid,
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": algorithm}),
            "signature": value,
        }
    )
    certificates = [cert] + [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in intermediates
    ]
    data = cms.SignedData(
        {
            "version": version,
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            "encap_content_info": {"content_type": "data"},
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": data}).dump()


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _attr(name: str, value: Any) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": [value]})


def _time(moment: datetime) -> cms.Time:
    # RFC 5652: UTCTime for 1950-2049, GeneralizedTime otherwise.
    if 1950 <= moment.year < 2050:
        return cms.Time(name="utc_time", value=moment)
    return cms.Time(name="general_time", value=moment)


def _zip(files: Mapping[str, bytes], when: datetime) -> bytes:
    """Deterministic for a given signing time: sorted names, fixed timestamps, deflate."""
    stamp = (max(1980, when.year), when.month, when.day, when.hour, when.minute, when.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()
