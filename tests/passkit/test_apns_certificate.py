"""ApnsClient in certificate mode: TLS client auth with the pass type's certificate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from passpost.config import Settings
from passpost.passkit.apns import (
    ApnsClient,
    ApnsConfigError,
    CertificateAuth,
    PushOutcome,
    PushResult,
    TokenAuth,
)
from tests.passkit.apns_helpers import device
from tests.peers.apns_server import ApnsPki, ApnsTestServer


@pytest.fixture
def server(apns_pki: ApnsPki) -> Iterator[ApnsTestServer]:
    """The APNs test server demanding a client certificate from the test CA."""
    with ApnsTestServer(apns_pki, mode="certificate") as running:
        yield running


def push(server: ApnsTestServer, auth: CertificateAuth | TokenAuth, topic: str) -> PushResult:
    async def main() -> PushResult:
        async with ApnsClient(
            auth, url=server.url, ca_file=server.pki.ca_file, max_attempts=1
        ) as client:
            return await client.push(device(1), topic)

    return asyncio.run(main())


def test_the_pass_certificate_authenticates(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    auth = CertificateAuth.from_files(apns_pki.client_cert, apns_pki.client_key)
    assert auth.topic == apns_pki.topic

    result = push(server, auth, apns_pki.topic)

    assert result.ok
    [seen] = server.received
    assert seen.client_subject == auth.subject
    assert f"UID={apns_pki.topic}" in seen.client_subject.split(",")
    assert "authorization" not in seen.headers
    assert seen.headers["apns-topic"] == apns_pki.topic
    assert seen.body == b"{}"


def test_a_p12_export_works_like_pem(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    certificate = x509.load_pem_x509_certificate(apns_pki.client_cert.read_bytes())
    key = serialization.load_pem_private_key(apns_pki.client_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    p12 = pkcs12.serialize_key_and_certificates(
        b"pass", key, certificate, None, serialization.BestAvailableEncryption(b"secret")
    )

    auth = CertificateAuth.from_pkcs12(p12, b"secret")

    assert push(server, auth, apns_pki.topic).ok
    with pytest.raises(ApnsConfigError):
        CertificateAuth.from_pkcs12(p12, b"wrong")


def test_another_topic_is_disallowed(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    auth = CertificateAuth.from_files(apns_pki.client_cert, apns_pki.client_key)

    result = push(server, auth, "pass.org.someone.else")

    assert (result.outcome, result.status, result.reason) == (
        PushOutcome.PERMANENT,
        400,
        "TopicDisallowed",
    )


def test_without_a_client_certificate_the_handshake_fails(
    server: ApnsTestServer, apns_pki: ApnsPki
) -> None:
    auth = TokenAuth.from_file(apns_pki.p8_key, key_id=apns_pki.key_id, team_id=apns_pki.team_id)

    result = push(server, auth, apns_pki.topic)

    assert (result.outcome, result.status) == (PushOutcome.TRANSIENT, None)
    assert server.received == []


def test_from_settings_prefers_the_given_certificate(
    server: ApnsTestServer, apns_pki: ApnsPki
) -> None:
    settings = Settings(
        apns_url=server.url,
        apns_ca_file=apns_pki.ca_file,
        apns_key_file=apns_pki.p8_key,
        apns_key_id=apns_pki.key_id,
        apns_team_id=apns_pki.team_id,
    )
    certificate = CertificateAuth.from_pem(
        apns_pki.client_cert.read_bytes() + apns_pki.client_key.read_bytes()
    )

    async def main() -> PushResult:
        async with ApnsClient.from_settings(settings, certificate) as client:
            assert client.auth is certificate
            return await client.push(device(1), apns_pki.topic)

    assert asyncio.run(main()).ok
    assert server.received[0].client_subject == certificate.subject


def test_a_key_of_another_certificate_is_refused(apns_pki: ApnsPki, tmp_path: Path) -> None:
    other = tmp_path / "other-key.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ApnsConfigError, match="does not belong"):
        CertificateAuth.from_files(apns_pki.client_cert, other)
    with pytest.raises(ApnsConfigError, match="unreadable"):
        CertificateAuth.from_pem(b"junk", b"junk")
