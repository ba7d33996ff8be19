"""Signing certificates: upload (.p12), list, delete, the WWDR intermediate, signing material.

Plain functions; the caller owns the transaction. Private keys and passphrases are stored
Fernet-encrypted (``passpost.secrets``) and never leave this module except as objects
handed to the signer or the APNs client.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from passpost import secrets
from passpost.certs.models import PassCertificate, WwdrCertificate
from passpost.db import utcnow
from passpost.errors import BadRequest, NotFound
from passpost.passes.signing import SigningMaterial

# Apple's marker extension of a Pass Type ID certificate.
PASS_TYPE_ID_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.1.16")
MAX_P12_BYTES = 64 * 1024
MAX_CERT_BYTES = 64 * 1024
DEFAULT_WWDR = "AppleWWDRCAG4.cer"
_PEM = serialization.Encoding.PEM


# -- reading certificates ----------------------------------------------------------------


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _name_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _spki(cert_or_key: Any) -> bytes:
    return bytes(
        cert_or_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _is_pkcs12(data: bytes) -> bool:
    """True when ``data`` parses as a PKCS#12 PFX structure (whatever its password)."""
    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        pfx["auth_safe"]["content_type"].native  # noqa: B018 - forces the parse
    except (ValueError, TypeError, KeyError):
        return False
    return True


def read_p12(
    data: bytes, passphrase: str
) -> tuple[x509.Certificate, PrivateKeyTypes, list[x509.Certificate]]:
    """The leaf, key and extra certificates of a .p12; ``BadRequest`` with a precise code."""
    if not data or len(data) > MAX_P12_BYTES or not _is_pkcs12(data):
        raise BadRequest("passCert is not a PKCS#12 (.p12) file.", error_code="INVALID_P12")
    passwords = [passphrase.encode()] + ([None] if passphrase == "" else [])
    loaded = None
    for password in passwords:
        try:
            loaded = pkcs12.load_key_and_certificates(data, password)
            break
        except ValueError:
            continue
    if loaded is None:
        raise BadRequest(
            "The passphrase does not open this .p12.", error_code="INVALID_P12_PASSPHRASE"
        )
    key, cert, extra = loaded
    if key is None or cert is None:
        raise BadRequest(
            "The .p12 must hold the certificate and its private key.", error_code="P12_NO_KEY"
        )
    if _spki(key) != _spki(cert):
        raise BadRequest(
            "The private key does not belong to the certificate.", error_code="P12_KEY_MISMATCH"
        )
    return cert, key, list(extra)


def pass_type_of(cert: x509.Certificate) -> tuple[str, str]:
    """(pass type identifier, team identifier) of a Pass Type ID certificate, else 400."""
    try:
        cert.extensions.get_extension_for_oid(PASS_TYPE_ID_OID)
    except x509.ExtensionNotFound:
        raise BadRequest(
            "The certificate is not a Pass Type ID certificate (Apple extension "
            "1.2.840.113635.100.6.1.16 missing).",
            error_code="NOT_PASS_TYPE_CERTIFICATE",
        ) from None
    pass_type = _name_value(cert, NameOID.USER_ID)
    team = _name_value(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not pass_type or not team:
        raise BadRequest(
            "The certificate's subject lacks the pass type id (UID) or team id (OU).",
            error_code="NOT_PASS_TYPE_CERTIFICATE",
        )
    return pass_type, team


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from DER or PEM bytes; ``BadRequest`` otherwise."""
    if not data or len(data) > MAX_CERT_BYTES:
        raise BadRequest("The file is not a certificate.", error_code="INVALID_CERTIFICATE")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise BadRequest(
            "The file is not a DER or PEM certificate.", error_code="INVALID_CERTIFICATE"
        ) from exc


# -- pass certificates -------------------------------------------------------------------


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest("certName must have 1 to 200 characters.", error_code="INVALID_CERT_NAME")
    return name


def _load_p12(row: PassCertificate, p12: bytes, passphrase: str) -> None:
    """Fill ``row`` from a .p12: the certificate, its key (encrypted), what it is for."""
    cert, key, extra = read_p12(p12, passphrase)
    pass_type, team = pass_type_of(cert)
    key_pem = key.private_bytes(
        _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    row.pass_type_identifier = pass_type
    row.team_identifier = team
    row.subject = cert.subject.rfc4514_string()
    row.issuer = cert.issuer.rfc4514_string()
    row.serial_hex = format(cert.serial_number, "X")
    row.sha256 = _fingerprint(cert)
    row.not_before = cert.not_valid_before_utc
    row.not_after = cert.not_valid_after_utc
    row.certificate_pem = cert.public_bytes(_PEM).decode("ascii")
    row.private_key_enc = secrets.encrypt(key_pem)
    row.passphrase_enc = secrets.encrypt(passphrase)
    row.extra_certificates_pem = "".join(c.public_bytes(_PEM).decode("ascii") for c in extra)


def add_certificate(
    session: Session,
    *,
    name: str,
    p12: bytes,
    passphrase: str,
    created_by: str | None,
    file_name: str | None = None,
) -> PassCertificate:
    """Store an uploaded Pass Type ID certificate; what it is for is read from it."""
    row = PassCertificate(
        name=_name(name),
        created_by=created_by,
        created_at=utcnow(),
        file_name=(file_name or "")[:255] or None,
    )
    _load_p12(row, p12, passphrase)
    session.add(row)
    session.flush()
    return row


def modify_certificate(
    session: Session,
    cert_id: int,
    *,
    name: str | None,
    p12: bytes | None,
    passphrase: str,
    updated_by: str | None,
    file_name: str | None = None,
) -> PassCertificate:
    """Rename a stored certificate and/or replace it with another .p12."""
    row = get_certificate(session, cert_id)
    if name is not None:
        row.name = _name(name)
    if p12:
        _load_p12(row, p12, passphrase)
        row.file_name = (file_name or "")[:255] or row.file_name
    row.updated_by = updated_by
    row.updated_at = utcnow()
    session.flush()
    return row


def page_certificates(
    session: Session, *, start: int, page_size: int
) -> tuple[int, list[PassCertificate]]:
    """The number of stored certificates and one page of them, newest first."""
    total = session.scalar(select(func.count()).select_from(PassCertificate)) or 0
    rows = session.scalars(
        select(PassCertificate).order_by(PassCertificate.id.desc()).offset(start).limit(page_size)
    )
    return total, list(rows)


def list_certificates(session: Session) -> list[PassCertificate]:
    """Every stored signing certificate, newest first."""
    return list(session.scalars(select(PassCertificate).order_by(PassCertificate.id.desc())))


def get_certificate(session: Session, cert_id: int) -> PassCertificate:
    """One stored certificate, or ``NotFound``."""
    row = session.get(PassCertificate, cert_id)
    if row is None:
        raise NotFound(f"No pass certificate {cert_id}.", error_code="PASS_CERT_NOT_FOUND")
    return row


def delete_certificate(session: Session, cert_id: int) -> None:
    """Delete a stored certificate (its key goes with it)."""
    session.delete(get_certificate(session, cert_id))


def _valid_certificate(with_team: bool) -> Any:
    query = select(PassCertificate.id).where(
        PassCertificate.pass_type_identifier == bindparam("pass_type"),
        PassCertificate.not_before <= bindparam("now"),
        PassCertificate.not_after > bindparam("now"),
    )
    if with_team:
        query = query.where(PassCertificate.team_identifier == bindparam("team"))
    return query.order_by(PassCertificate.not_after.desc(), PassCertificate.id.desc()).limit(1)


# Built once: every import asks (most find none), and building costs more than running.
_VALID_CERTIFICATE = {False: _valid_certificate(False), True: _valid_certificate(True)}


def certificate_for(
    session: Session, *, pass_type_identifier: str, team_identifier: str | None = None
) -> PassCertificate | None:
    """The valid certificate for a pass type (and team) that expires last, if any."""
    params = {"pass_type": pass_type_identifier, "now": utcnow(), "team": team_identifier}
    query = _VALID_CERTIFICATE[team_identifier is not None]
    cert_id = session.connection().execute(query, params).scalar()
    return session.get(PassCertificate, cert_id) if cert_id is not None else None


def private_key_of(row: PassCertificate) -> PrivateKeyTypes:
    """Decrypt a stored certificate's private key."""
    return _private_key(row.private_key_enc)


@lru_cache(maxsize=32)
def _private_key(encrypted: str) -> PrivateKeyTypes:
    # Loading an RSA key checks it (about 0.25 s on a busy machine): personal passes are
    # signed one per first download, so each stored key is loaded once per process.
    return serialization.load_pem_private_key(secrets.decrypt(encrypted), None)


def certificate_of(row: PassCertificate) -> x509.Certificate:
    """A stored certificate as an object."""
    return x509.load_pem_x509_certificate(row.certificate_pem.encode("ascii"))


def extra_certificates_of(row: PassCertificate) -> list[x509.Certificate]:
    """The certificates that came in the .p12 besides the leaf."""
    if not row.extra_certificates_pem:
        return []
    return x509.load_pem_x509_certificates(row.extra_certificates_pem.encode("ascii"))


# -- the WWDR intermediate ---------------------------------------------------------------


@lru_cache(maxsize=1)
def bundled_intermediates() -> tuple[x509.Certificate, ...]:
    """The Apple WWDR certificates shipped in ``passpost/pkpass/certs`` (G4 first)."""
    folder = resources.files("passpost.pkpass") / "certs"
    names = sorted(
        (p.name for p in folder.iterdir() if p.name.startswith("AppleWWDR")),
        key=lambda n: (n != DEFAULT_WWDR, n),
    )
    return tuple(load_certificate((folder / n).read_bytes()) for n in names)


def uploaded_wwdr(session: Session) -> WwdrCertificate | None:
    """The newest operator-supplied WWDR certificate, if any."""
    return session.scalars(select(WwdrCertificate).order_by(WwdrCertificate.id.desc())).first()


def current_wwdr(session: Session) -> tuple[x509.Certificate, str]:
    """The WWDR certificate used when signing and where it comes from (uploaded/bundled)."""
    row = uploaded_wwdr(session)
    if row is not None:
        return x509.load_pem_x509_certificate(row.certificate_pem.encode("ascii")), "uploaded"
    bundled = bundled_intermediates()
    if not bundled:
        raise NotFound("No WWDR certificate is bundled.", error_code="WWDR_NOT_FOUND")
    return bundled[0], "bundled"


def set_wwdr(session: Session, *, data: bytes, created_by: str | None) -> WwdrCertificate:
    """Store a WWDR intermediate (a CA certificate, DER or PEM) to use when signing."""
    cert = load_certificate(data)
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if not ca:
        raise BadRequest(
            "The WWDR certificate must be a CA certificate.", error_code="NOT_CA_CERTIFICATE"
        )
    fingerprint = _fingerprint(cert)
    existing = session.scalars(
        select(WwdrCertificate).where(WwdrCertificate.sha256 == fingerprint)
    ).first()
    if existing is not None:
        # Re-uploading an older one makes it current again.
        session.delete(existing)
        session.flush()
    row = WwdrCertificate(
        subject=cert.subject.rfc4514_string(),
        sha256=fingerprint,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        certificate_pem=cert.public_bytes(_PEM).decode("ascii"),
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def _issued(leaf: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(candidate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def signing_material(session: Session, row: PassCertificate) -> SigningMaterial:
    """Certificate, key and the intermediate to embed: the one that issued the leaf.

    Candidates in order: the operator's WWDR, the .p12's extra certificates, the bundled
    WWDR set; when none issued the leaf, the operator's (or bundled G4) WWDR is embedded.
    """
    wwdr, _ = current_wwdr(session)
    return _material(
        row.certificate_pem,
        row.private_key_enc,
        row.extra_certificates_pem,
        wwdr.public_bytes(_PEM).decode("ascii"),
    )


@lru_cache(maxsize=32)
def _material(cert_pem: str, key_enc: str, extra_pem: str | None, wwdr_pem: str) -> SigningMaterial:
    # Cached by content: personal passes are signed one per first download, and parsing
    # the certificates and finding the issuer costs more than the signature itself.
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    wwdr = x509.load_pem_x509_certificate(wwdr_pem.encode("ascii"))
    extra = x509.load_pem_x509_certificates(extra_pem.encode("ascii")) if extra_pem else []
    candidates = [wwdr, *extra, *bundled_intermediates()]
    issuer = next((c for c in candidates if _issued(cert, c)), wwdr)
    return SigningMaterial(cert, _private_key(key_enc), (issuer,))


def signing_material_for(
    session: Session, *, pass_type_identifier: str, team_identifier: str
) -> SigningMaterial | None:
    """What re-signs a pass of this type and team, when passpost holds a valid certificate."""
    row = certificate_for(
        session, pass_type_identifier=pass_type_identifier, team_identifier=team_identifier
    )
    return signing_material(session, row) if row is not None else None


def certificate_expired(row: PassCertificate, *, now: datetime | None = None) -> bool:
    """True when the certificate is past its expiry."""
    return row.not_after <= (now or utcnow())
