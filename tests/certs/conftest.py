"""Fixtures of the certificate tests: .p12 files of the test PKI."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.support.passes import TestPki

PASSPHRASE = "p12 secret phrase"


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


@pytest.fixture
def p12(pki: TestPki) -> bytes:
    return make_p12(pki)
