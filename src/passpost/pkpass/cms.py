"""Verify a detached CMS SignedData over manifest.json (asn1crypto parses, cryptography checks)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# Everything asn1crypto raises on malformed DER/BER when a lazily parsed field is touched.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class SignatureProblem(Exception):
    """Why a signature does not verify; ``code`` is the finding's errorCode."""

    def __init__(self, message: str, code: str = "SIGNATURE_INVALID") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature whose value and messageDigest check out (trust is decided elsewhere)."""

    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]  # every certificate the signature embeds
    signing_time: datetime | None
    digest_algorithm: str


def verify_detached(signature: bytes, content: bytes) -> VerifiedSignature:
    """Check ``signature`` is a CMS SignedData whose one signer signed ``content``."""
    try:
        return _verify(signature, content)
    except SignatureProblem:
        raise
    except RecursionError as exc:
        raise SignatureProblem("The signature's ASN.1 is nested too deeply.") from exc
    except _ASN1_ERRORS as exc:
        raise SignatureProblem("The signature file is not a well-formed CMS structure.") from exc


def _verify(signature: bytes, content: bytes) -> VerifiedSignature:
    info = asn1_cms.ContentInfo.load(signature)
    if info["content_type"].native != "signed_data":
        raise SignatureProblem("The signature file is CMS, but not SignedData.")
    signed_data = info["content"]
    encap = signed_data["encap_content_info"]
    embedded_content = encap["content"].native if encap["content"] else None
    if embedded_content is not None and embedded_content != content:
        raise SignatureProblem("The signature embeds a manifest different from manifest.json.")
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise SignatureProblem(f"The signature has {len(signer_infos)} signers; a pass has one.")
    signer_info = signer_infos[0]
    embedded = [
        choice.chosen
        for choice in (signed_data["certificates"] or [])
        if choice.name == "certificate"
    ]
    signer_asn1 = _find_signer(signer_info["sid"], embedded)
    signer = _load_certificate(signer_asn1.dump())
    if signer is None:
        raise SignatureProblem("The signer's certificate in the signature is malformed.")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in HASHES:
        raise SignatureProblem(f"The signature uses the unsupported digest {digest_name}.")
    signed_bytes, signing_time = _signed_bytes(
        signer_info, encap["content_type"].native, content, digest_name
    )
    _check_value(signer, signer_info, signed_bytes, digest_name)
    loaded = (_load_certificate(c.dump()) for c in embedded)
    certificates = tuple(c for c in loaded if c is not None)
    return VerifiedSignature(signer, certificates, signing_time, digest_name)


def _load_certificate(der: bytes) -> x509.Certificate | None:
    """The certificate with every field we read parsed now, or None when one is malformed.

    cryptography parses names, extensions and keys lazily; touching them here keeps the
    path builder and the Pass Type ID checks free of parse errors on hostile input.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = (cert.version, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())
        _ = (list(cert.extensions), cert.public_key(), cert.not_valid_after_utc)
    except (ValueError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm):
        return None
    return cert


def _find_signer(sid: asn1_cms.SignerIdentifier, certs: list[asn1_x509.Certificate]) -> Any:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        for cert in certs:
            if cert.serial_number == serial and cert.issuer == issuer:
                return cert
    else:
        key_id = sid.chosen.native
        for cert in certs:
            if cert.key_identifier == key_id:
                return cert
    raise SignatureProblem("The signature does not contain its signer's certificate.")


def _signed_bytes(
    signer_info: asn1_cms.SignerInfo, content_type: str, content: bytes, digest_name: str
) -> tuple[bytes, datetime | None]:
    """The bytes the signature value covers, after checking the signed attributes."""
    attrs = signer_info["signed_attrs"]
    if not attrs:
        return content, None
    values: dict[str, Any] = {}
    for attr in attrs:
        name = attr["type"].native
        if name in values:
            raise SignatureProblem(f"The signed attribute {name} appears twice.")
        if len(attr["values"]) != 1:
            raise SignatureProblem(f"The signed attribute {name} must have exactly one value.")
        values[name] = attr["values"][0]
    if "content_type" not in values or values["content_type"].native != content_type:
        raise SignatureProblem("The signed contentType attribute is missing or wrong.")
    if "message_digest" not in values:
        raise SignatureProblem("The signature has no messageDigest attribute.")
    digest = hashlib.new(digest_name, content).digest()
    if not hmac.compare_digest(values["message_digest"].native, digest):
        raise SignatureProblem(
            "The signature was made over a different manifest.json (messageDigest mismatch)."
        )
    signing_time = None
    if "signing_time" in values:
        signing_time = values["signing_time"].native
        if signing_time.tzinfo is None:
            signing_time = signing_time.replace(tzinfo=UTC)
    # RFC 5652 §5.4: the value signs the attributes' DER as an explicit SET OF, not the [0].
    raw = attrs.dump()
    return b"\x31" + raw[1:], signing_time


def _check_value(
    signer: x509.Certificate, signer_info: asn1_cms.SignerInfo, data: bytes, digest_name: str
) -> None:
    algorithm = signer_info["signature_algorithm"]
    value = signer_info["signature"].native
    try:
        verify_raw(signer.public_key(), value, data, algorithm, digest_name)
    except InvalidSignature as exc:
        raise SignatureProblem(
            "The signature value does not verify with the signer's public key."
        ) from exc


def verify_raw(key: Any, value: bytes, data: bytes, algorithm: Any, digest_name: str) -> None:
    """Verify one signature value; ``algorithm`` is an asn1crypto SignedDigestAlgorithm."""
    family = algorithm.signature_algo
    try:
        if isinstance(key, rsa.RSAPublicKey) and family == "rsassa_pkcs1v15":
            key.verify(value, data, padding.PKCS1v15(), HASHES[digest_name]())
        elif isinstance(key, rsa.RSAPublicKey) and family == "rsassa_pss":
            key.verify(value, data, *_pss(algorithm["parameters"]))
        elif isinstance(key, ec.EllipticCurvePublicKey) and family == "ecdsa":
            key.verify(value, data, ec.ECDSA(HASHES[digest_name]()))
        else:
            raise SignatureProblem(
                f"The signature algorithm {algorithm['algorithm'].native} does not fit the "
                f"signer's {type(key).__name__.removesuffix('PublicKey')} key."
            )
    except UnsupportedAlgorithm as exc:
        raise SignatureProblem(f"Unsupported signature algorithm: {exc}.") from exc


def _pss(params: Any) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
    if hash_name not in HASHES or mgf_hash not in HASHES:
        raise SignatureProblem("The RSASSA-PSS parameters use an unsupported hash.")
    pss = padding.PSS(
        mgf=padding.MGF1(HASHES[mgf_hash]()), salt_length=params["salt_length"].native
    )
    return pss, HASHES[hash_name]()
