"""Certificates: the bundled Apple roots and WWDR intermediates, and loading PEM/DER files."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from cryptography import x509

from passpost.pkpass.errors import PkpassError

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----.+?"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)


def load_certificates(source: bytes | str | Path) -> list[x509.Certificate]:
    """All certificates in a PEM bundle or one DER certificate (bytes, or a file path)."""
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise PkpassError(
                "CERTIFICATE_UNREADABLE", f"Cannot read certificate file {source}: {exc.strerror}."
            ) from exc
    try:
        blocks = _PEM_BLOCK.findall(data)
        if blocks:
            return [x509.load_pem_x509_certificate(block) for block in blocks]
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise PkpassError(
            "CERTIFICATE_UNREADABLE", "The certificate data is neither PEM nor DER X.509."
        ) from exc


@cache
def _bundled() -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    # Parsed once per process: validation of many passes must not re-read package data.
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    folder = resources.files("passpost.pkpass") / "certs"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".cer"):
            continue
        cert = x509.load_der_x509_certificate(entry.read_bytes())
        if entry.name.startswith(("AppleIncRoot", "AppleRootCA")):
            roots.append(cert)
        elif entry.name.startswith("AppleWWDR"):
            intermediates.append(cert)
    return tuple(roots), tuple(intermediates)


def apple_roots() -> tuple[x509.Certificate, ...]:
    """The bundled Apple root CAs (Apple Root CA, G2, G3): the default trust anchors."""
    return _bundled()[0]


def apple_intermediates() -> tuple[x509.Certificate, ...]:
    """The bundled Apple WWDR intermediates (both G1 editions, G2 … G8)."""
    return _bundled()[1]
