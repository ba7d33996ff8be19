"""Verify a detached CMS SignedData over manifest.json (asn1crypto parses, cryptography checks)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from asn1crypto import algos, core, parser
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

# Attribute types compared by their encoded contents: decoding OIDs to dotted text is a
# measurable share of a validation.
_CONTENT_TYPE = core.ObjectIdentifier("1.2.840.113549.1.9.3").contents
_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").contents
_SIGNING_TIME = core.ObjectIdentifier("1.2.840.113549.1.9.5").contents
_NEEDED_ATTRIBUTES = frozenset((_CONTENT_TYPE, _MESSAGE_DIGEST, _SIGNING_TIME))
_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").contents

_DIGESTS = {algos.DigestAlgorithmId(name).contents: name for name in HASHES}
# signature algorithm OID -> family, for those that need no parameters
_SIGNATURE_FAMILIES = {
    algos.SignedDigestAlgorithmId(name).contents: algos.SignedDigestAlgorithm(
        {"algorithm": name}
    ).signature_algo
    for name in (
        "rsassa_pkcs1v15",
        *(f"{h}_rsa" for h in HASHES),
        *(f"{h}_ecdsa" for h in HASHES),
        "ecdsa",
    )
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
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureProblem(
            f"The signature file is {len(signature)} bytes; a pass signature is a few KB."
        )
    try:
        return _verify(signature, content)
    except SignatureProblem:
        raise
    except RecursionError as exc:
        raise SignatureProblem("The signature's ASN.1 is nested too deeply.") from exc
    except _ASN1_ERRORS as exc:
        raise SignatureProblem("The signature file is not a well-formed CMS structure.") from exc


def _verify(signature: bytes, content: bytes) -> VerifiedSignature:
    # The envelope is walked with asn1crypto's low-level parser (BER and DER alike); only
    # the small parts we interpret are loaded as asn1crypto objects. Building the whole
    # SignedData as objects cost more than unzipping and hashing a 300 KB pass.
    fields = _elements(_first(signature, _SEQUENCE)[4])
    if len(fields) != 2 or fields[0][:3] != _OID or fields[1][:3] != _EXPLICIT_0:
        raise SignatureProblem("The signature file is not a CMS ContentInfo.")
    if fields[0][4] != _SIGNED_DATA:
        raise SignatureProblem("The signature file is CMS, but not SignedData.")
    parts = _elements(_first(fields[1][4], _SEQUENCE)[4])
    if len(parts) < 4 or [p[:3] for p in parts[:3]] != [_INTEGER, _SET, _SEQUENCE]:
        raise SignatureProblem(_MALFORMED)
    content_type = _check_encapsulated(parts[2], content)
    signer_infos = parts[-1]
    certificate_set = next((p for p in parts[3:-1] if p[:3] == _IMPLICIT_0), None)
    if signer_infos[:3] != _SET:
        raise SignatureProblem(_MALFORMED)
    infos = _elements(signer_infos[4])
    if len(infos) != 1:
        raise SignatureProblem(f"The signature has {len(infos)} signers; a pass has one.")
    if infos[0][:3] != _SEQUENCE:
        raise SignatureProblem(_MALFORMED)
    info = _elements(infos[0][4])
    signed_attrs = info[3] if len(info) > 3 and info[3][:3] == _IMPLICIT_0 else None
    rest = info[4:] if signed_attrs is not None else info[3:]
    if len(info) < 5 or len(rest) < 2 or info[2][:3] != _SEQUENCE or rest[0][:3] != _SEQUENCE:
        raise SignatureProblem(_MALFORMED)
    records = _certificate_records(_raw(certificate_set)) if certificate_set else []
    signer = _find_signer(info[1], records)
    digest_name = _DIGESTS.get(_algorithm_oid(info[2]))
    if digest_name is None:
        name = algos.DigestAlgorithm.load(_raw(info[2]))["algorithm"].native
        raise SignatureProblem(f"The signature uses the unsupported digest {name}.")
    signed_bytes, signing_time = _signed_bytes(signed_attrs, content_type, content, digest_name)
    _check_value(signer, rest[0], _octets(rest[1]), signed_bytes, digest_name)
    certificates = tuple(r.cert for r in records if r is not None)
    return VerifiedSignature(signer, certificates, signing_time, digest_name)


def _check_encapsulated(encap: _Element, content: bytes) -> bytes:
    """The eContentType OID; an embedded eContent must be ``content`` itself."""
    fields = _elements(encap[4])
    if not fields or fields[0][:3] != _OID:
        raise SignatureProblem(_MALFORMED)
    if len(fields) > 1:
        embedded = core.OctetString.load(_raw(_first(fields[1][4], None))).native
        if embedded != content:
            raise SignatureProblem("The signature embeds a manifest different from manifest.json.")
    return fields[0][4]


@lru_cache(maxsize=256)
def _certificate_records(raw_set: bytes) -> list[_CertificateRecord | None]:
    """The embedded certificates (the [0] IMPLICIT SET), parsed once per distinct set."""
    choices = asn1_cms.CertificateSet.load(b"\x31" + raw_set[1:])
    return [
        _certificate_record(choice.chosen.dump())
        for choice in choices
        if choice.name == "certificate"
    ]


@dataclass(frozen=True)
class _CertificateRecord:
    cert: x509.Certificate
    serial: int
    issuer_der: bytes
    issuer: asn1_x509.Name
    key_identifier: bytes | None


@lru_cache(maxsize=512)
def _certificate_record(der: bytes) -> _CertificateRecord | None:
    """A certificate with every field we read parsed now, or None when one is malformed.

    cryptography parses names, extensions and keys lazily; touching them here keeps the
    path builder and the Pass Type ID checks free of parse errors on hostile input. Cached
    by DER: an issuer signs many passes with the same certificates, and returning the same
    objects lets the path builder cache by identity.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = (cert.version, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())
        _ = (list(cert.extensions), cert.public_key(), cert.not_valid_after_utc)
        parsed = asn1_x509.Certificate.load(der)
        issuer = parsed.issuer
        return _CertificateRecord(
            cert, parsed.serial_number, issuer.dump(), issuer, parsed.key_identifier
        )
    except (ValueError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm):
        return None
    except _ASN1_ERRORS:
        return None


def _find_signer(sid: _Element, records: list[_CertificateRecord | None]) -> x509.Certificate:
    """The embedded certificate the SignerIdentifier names (issuer+serial, or key id)."""
    usable = [r for r in records if r is not None]
    if sid[:3] == _SEQUENCE:  # IssuerAndSerialNumber
        parts = _elements(sid[4])
        if len(parts) != 2 or parts[0][:3] != _SEQUENCE or parts[1][:3] != _INTEGER:
            raise SignatureProblem(_MALFORMED)
        issuer = _raw(parts[0])
        serial = int.from_bytes(parts[1][4], "big", signed=True)
        candidates = [r for r in usable if r.serial == serial]
        for record in candidates:
            if record.issuer_der == issuer:
                return record.cert
        # Re-encoded names (another string type, say) still name the same issuer; asn1crypto
        # compares them semantically, at a cost paid only here.
        parsed = asn1_x509.Name.load(issuer) if candidates else None
        for record in candidates:
            if record.issuer == parsed:
                return record.cert
    elif sid[:3] == _IMPLICIT_KEY_ID:  # [0] SubjectKeyIdentifier
        for record in usable:
            if record.key_identifier == sid[4]:
                return record.cert
    else:
        raise SignatureProblem(_MALFORMED)
    if len(usable) < len(records):
        raise SignatureProblem("The signer's certificate is missing or malformed.")
    raise SignatureProblem("The signature does not contain its signer's certificate.")


def _algorithm_oid(identifier: _Element) -> bytes:
    """The OID (encoded contents) of an AlgorithmIdentifier SEQUENCE."""
    parts = _elements(identifier[4]) if identifier[:3] == _SEQUENCE else []
    if not parts or parts[0][:3] != _OID:
        raise SignatureProblem(_MALFORMED)
    return parts[0][4]


def _octets(element: _Element) -> bytes:
    if element[:3] == _OCTET_STRING:
        return element[4]
    if element[:3] == (0, 1, 4):  # BER constructed OCTET STRING
        return bytes(core.OctetString.load(_raw(element)).native)
    raise SignatureProblem(_MALFORMED)


def _signed_bytes(
    attrs: _Element | None, content_type: bytes, content: bytes, digest_name: str
) -> tuple[bytes, datetime | None]:
    """The bytes the signature value covers, after checking the signed attributes."""
    if attrs is None:
        return content, None
    values: dict[bytes, list[_Element] | None] = {}
    for attribute in _elements(attrs[4]):
        parts = _elements(attribute[4]) if attribute[:3] == _SEQUENCE else []
        if len(parts) != 2 or parts[0][:3] != _OID or parts[1][:3] != _SET:
            raise SignatureProblem("A signed attribute of the signature is malformed.")
        oid = parts[0][4]
        if oid in values:
            raise SignatureProblem("A signed attribute appears twice in the signature.")
        values[oid] = _elements(parts[1][4]) if oid in _NEEDED_ATTRIBUTES else None
        if values[oid] is not None and len(values[oid] or ()) != 1:
            raise SignatureProblem("A signed attribute must have exactly one value.")
    declared = values.get(_CONTENT_TYPE)
    if not declared or declared[0][:3] != _OID or declared[0][4] != content_type:
        raise SignatureProblem("The signed contentType attribute is missing or wrong.")
    digest_value = values.get(_MESSAGE_DIGEST)
    if not digest_value or digest_value[0][:3] != _OCTET_STRING:
        raise SignatureProblem("The signature has no messageDigest attribute.")
    digest = hashlib.new(digest_name, content).digest()
    if not hmac.compare_digest(digest_value[0][4], digest):
        raise SignatureProblem(
            "The signature was made over a different manifest.json (messageDigest mismatch)."
        )
    time_value = values.get(_SIGNING_TIME)
    signing_time = _signing_time(time_value[0]) if time_value else None
    # RFC 5652 §5.4: the value signs the attributes' DER as an explicit SET OF, not the [0].
    return b"\x31" + _raw(attrs)[1:], signing_time


# (class, constructed, tag) of the types met in the envelope and the signed attributes
_SEQUENCE = (0, 1, 16)
_SET = (0, 1, 17)
_OID = (0, 0, 6)
_INTEGER = (0, 0, 2)
_IMPLICIT_KEY_ID = (2, 0, 0)
_EXPLICIT_0 = (2, 1, 0)
_IMPLICIT_0 = (2, 1, 0)
_MALFORMED = "The signature file is not a well-formed CMS SignedData."
_MAX_ELEMENTS = 64  # per constructed value; a real signature has at most 7 (SignerInfo)
MAX_SIGNATURE_BYTES = 256 * 1024  # real signatures are 3-5 KB
_OCTET_STRING = (0, 0, 4)
_UTC_TIME = (0, 0, 23)
_GENERALIZED_TIME = (0, 0, 24)
_Element = tuple[int, int, int, bytes, bytes, bytes]


def _elements(data: bytes) -> list[_Element]:
    """The consecutive TLVs in ``data`` as (class, method, tag, header, contents, trailer)."""
    found: list[_Element] = []
    pos = 0
    while pos < len(data):
        if len(found) == _MAX_ELEMENTS:
            raise SignatureProblem(_MALFORMED)
        # parser._parse takes an offset: slicing for parser.parse would copy the rest of the
        # data once per element (quadratic on hostile input). asn1crypto is pinned.
        element, pos = parser._parse(data, len(data), pos)
        found.append(element)
    return found


def _first(data: bytes, kind: tuple[int, int, int] | None) -> _Element:
    """The first TLV of ``data`` (trailing bytes ignored, as OpenSSL does), of ``kind``."""
    element = parser.parse(data)
    if kind is not None and element[:3] != kind:
        raise SignatureProblem(_MALFORMED)
    return element


def _raw(element: _Element) -> bytes:
    return element[3] + element[4] + element[5]


def _signing_time(element: _Element) -> datetime:
    kind = element[:3]
    text = element[4]
    if kind == _UTC_TIME and len(text) == 13 and text[-1:] == b"Z" and text[:12].isdigit():
        # YYMMDDHHMMSSZ, the form DER requires (RFC 5280 year window: 50-99 = 19xx)
        year = int(text[0:2])
        try:
            return datetime(
                year + (1900 if year >= 50 else 2000),
                int(text[2:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                tzinfo=UTC,
            )
        except ValueError as exc:
            raise SignatureProblem("The signingTime attribute is not a valid time.") from exc
    if kind == _UTC_TIME:
        value = core.UTCTime.load(element[3] + element[4]).native
    elif kind == _GENERALIZED_TIME:
        value = core.GeneralizedTime.load(element[3] + element[4]).native
    else:
        raise SignatureProblem("The signingTime attribute is not a time.")
    if not isinstance(value, datetime):
        raise SignatureProblem("The signingTime attribute is not a valid time.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _check_value(
    signer: x509.Certificate, algorithm: _Element, value: bytes, data: bytes, digest_name: str
) -> None:
    family = _SIGNATURE_FAMILIES.get(_algorithm_oid(algorithm))
    parsed = None
    if family is None:  # RSASSA-PSS (parameters needed) or an algorithm we will name
        parsed = algos.SignedDigestAlgorithm.load(_raw(algorithm))
        family = parsed.signature_algo
    try:
        verify_raw(signer.public_key(), value, data, family, digest_name, parsed)
    except InvalidSignature as exc:
        raise SignatureProblem(
            "The signature value does not verify with the signer's public key."
        ) from exc


def verify_raw(
    key: Any, value: bytes, data: bytes, family: str, digest_name: str, algorithm: Any = None
) -> None:
    """Verify one signature value; ``algorithm`` (asn1crypto) is needed for RSASSA-PSS only."""
    try:
        if isinstance(key, rsa.RSAPublicKey) and family == "rsassa_pkcs1v15":
            key.verify(value, data, padding.PKCS1v15(), HASHES[digest_name]())
        elif isinstance(key, rsa.RSAPublicKey) and family == "rsassa_pss" and algorithm:
            key.verify(value, data, *_pss(algorithm["parameters"]))
        elif isinstance(key, ec.EllipticCurvePublicKey) and family == "ecdsa":
            key.verify(value, data, ec.ECDSA(HASHES[digest_name]()))
        else:
            raise SignatureProblem(
                f"The signature algorithm ({family}) does not fit the "
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


def clear_cache() -> None:
    """Forget the parsed certificates."""
    _certificate_records.cache_clear()
    _certificate_record.cache_clear()
