"""Is the signer a Pass Type ID certificate for this pass's type and team?"""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import NameOID

PASS_TYPE_ID_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.1.16")


def pass_type_extension(cert: x509.Certificate) -> str | None:
    """The value of Apple's Pass Type ID extension, or None when the certificate lacks it."""
    try:
        ext = cert.extensions.get_extension_for_oid(PASS_TYPE_ID_OID)
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a duplicated or malformed extension list
        return None
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    return _decode_text(raw)


@lru_cache(maxsize=256)
def _decode_text(raw: bytes) -> str:
    """A DER string's text, or the raw bytes as UTF-8 when they are not one."""
    try:
        value = core.load(raw).native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError):
        value = None  # not DER: fall back to the raw bytes as text
    if isinstance(value, str):
        return value
    return raw.decode("utf-8", errors="replace")


def signer_problems(
    cert: x509.Certificate, *, pass_type_identifier: str, team_identifier: str
) -> list[tuple[str, str]]:
    """(errorCode, sentence) for each way the signer does not fit the pass; empty when it fits."""
    extension = pass_type_extension(cert)
    if extension is None:
        return [
            (
                "SIGNER_NOT_PASS_TYPE_ID",
                f"The pass is signed with {_cn(cert)}, which is not a Pass Type ID certificate "
                "(Apple extension 1.2.840.113635.100.6.1.16 absent).",
            )
        ]
    problems = []
    # Wallet checks this too ("leaf LeafMarkerOid" trust failures): a certificate created
    # with a custom name carries that name here instead of the pass type identifier.
    if extension != pass_type_identifier:
        problems.append(
            (
                "SIGNER_MISMATCH",
                f"The certificate's Pass Type ID extension says {extension!r}, "
                f"but passTypeIdentifier is {pass_type_identifier!r}.",
            )
        )
    uids = _values(cert, NameOID.USER_ID)
    if pass_type_identifier not in uids:
        problems.append(
            (
                "SIGNER_MISMATCH",
                f"The certificate is for {_or(uids)}, but passTypeIdentifier is "
                f"{pass_type_identifier!r}.",
            )
        )
    units = _values(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if team_identifier not in units:
        problems.append(
            (
                "SIGNER_MISMATCH",
                f"The certificate belongs to team {_or(units)}, but teamIdentifier is "
                f"{team_identifier!r}.",
            )
        )
    return problems


def _values(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _or(values: list[str]) -> str:
    return " or ".join(repr(v) for v in values) if values else "no identifier"


def _cn(cert: x509.Certificate) -> str:
    names = _values(cert, NameOID.COMMON_NAME)
    return repr(names[0]) if names else repr(cert.subject.rfc4514_string())


def clear_cache() -> None:
    """Forget decoded extension values."""
    _decode_text.cache_clear()
