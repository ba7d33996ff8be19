"""Certificate auth: TLS client authentication with the pass type's certificate and key.

The certificate is bound to one topic (its UID is the pass type identifier), so a client in
this mode serves that pass type only: keep one ``ApnsClient`` per certificate.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from passpost.passkit.apns.auth import ApnsConfigError


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class CertificateAuth:
    """A pass type certificate (plus chain) and its private key."""

    mode = "certificate"

    def __init__(
        self,
        certificate: x509.Certificate,
        key: PrivateKeyTypes,
        *,
        chain: list[x509.Certificate] | None = None,
    ) -> None:
        if _spki(certificate.public_key()) != _spki(key.public_key()):
            raise ApnsConfigError("the private key does not belong to the certificate")
        self.certificate = certificate
        self._key = key
        self.chain = list(chain or [])

    @classmethod
    def from_pem(
        cls, certificate_pem: bytes, key_pem: bytes | None = None, *, password: bytes | None = None
    ) -> CertificateAuth:
        """From PEM bytes; ``key_pem`` may be omitted when ``certificate_pem`` holds the key."""
        try:
            certificates = x509.load_pem_x509_certificates(certificate_pem)
            key = serialization.load_pem_private_key(key_pem or certificate_pem, password=password)
        except (ValueError, TypeError) as exc:
            raise ApnsConfigError(f"unreadable APNs certificate or key: {exc}") from exc
        return cls(certificates[0], key, chain=certificates[1:])

    @classmethod
    def from_pkcs12(cls, data: bytes, password: bytes | None = None) -> CertificateAuth:
        """From a ``.p12`` (what Keychain exports for a pass type certificate)."""
        try:
            key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError) as exc:
            raise ApnsConfigError(f"unreadable .p12: {exc}") from exc
        if key is None or certificate is None:
            raise ApnsConfigError("the .p12 holds no certificate with its private key")
        return cls(certificate, key, chain=list(extra))

    @classmethod
    def from_files(
        cls,
        certificate_path: Path | str,
        key_path: Path | str | None = None,
        *,
        password: bytes | None = None,
    ) -> CertificateAuth:
        """From PEM files (the key may live in the certificate file)."""
        try:
            certificate_pem = Path(certificate_path).read_bytes()
            key_pem = Path(key_path).read_bytes() if key_path is not None else None
        except OSError as exc:
            raise ApnsConfigError(f"cannot read the APNs certificate: {exc}") from exc
        return cls.from_pem(certificate_pem, key_pem, password=password)

    @property
    def topic(self) -> str | None:
        """The pass type identifier the certificate is for (its subject UID), if present."""
        values = self.certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
        return str(values[0].value) if values else None

    @property
    def subject(self) -> str:
        """The certificate's subject, RFC 4514."""
        return self.certificate.subject.rfc4514_string()

    def authorization(self) -> None:
        """No header: the TLS handshake authenticates."""
        return None

    def refresh(self, rejected: str | None) -> None:
        """Nothing to renew: a certificate does not expire mid-connection."""

    def configure(self, context: ssl.SSLContext) -> None:
        """Load certificate and key into ``context``.

        ``ssl`` reads client certificates from files only, so they go to a private temporary
        directory for the call, the key encrypted with a one-time passphrase so it never
        touches the disk in clear.
        """
        passphrase = secrets.token_bytes(32)
        key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        chain_pem = b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in [self.certificate, *self.chain]
        )
        with tempfile.TemporaryDirectory(prefix="passpost-apns-") as directory:
            certificate_file = os.path.join(directory, "certificate.pem")
            key_file = os.path.join(directory, "key.pem")
            for path, data in ((certificate_file, chain_pem), (key_file, key_pem)):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
            context.load_cert_chain(certificate_file, key_file, password=passphrase)
