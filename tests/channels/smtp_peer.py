"""Real peers for the channel tests: an aiosmtpd server on loopback, a TLS certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One message the SMTP peer accepted."""

    sender: str
    recipients: list[str]
    content: bytes
    tls: bool
    login: str | None


@dataclass
class ScriptedHandler:
    """Accepts mail, except for scripted recipients: ``temp451-…`` gets one 451 first,
    ``reject550-…`` a 550 at RCPT, ``data554-…`` a 554 after DATA."""

    messages: list[Received] = field(default_factory=list)
    seen_451: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@")[0]
        if local.startswith("reject550"):
            return "550 5.1.1 <" + address + ">: Recipient address rejected: User unknown"
        if local.startswith("temp451"):
            with self.lock:
                first = address not in self.seen_451
                self.seen_451.add(address)
            if first:
                return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(r.split("@")[0].startswith("data554") for r in envelope.rcpt_tos):
            return "554 5.7.1 Message rejected as spam"
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        # session.ssl is only set by STARTTLS; implicit TLS shows on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.messages.append(
                Received(
                    sender=str(envelope.mail_from),
                    recipients=list(envelope.rcpt_tos),
                    content=bytes(envelope.original_content or b""),
                    tls=tls,
                    login=login,
                )
            )
        return "250 2.0.0 Ok: queued"


class CountingController(Controller):
    """A Controller whose servers count the TCP connections they accept."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections = 0

    def factory(self) -> SMTP:
        controller = self

        class _Counting(SMTP):
            def connection_made(self, transport: Any) -> None:
                controller.connections += 1
                super().connection_made(transport)

        return _Counting(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpPeer:
    controller: CountingController
    handler: ScriptedHandler
    port: int

    @property
    def connections(self) -> int:
        return self.controller.connections


def start_peer(port: int | None = None, **kwargs: Any) -> SmtpPeer:
    """Start an aiosmtpd server on loopback (a free port unless ``port`` is given)."""
    handler = ScriptedHandler()
    port = port or free_port()
    controller = CountingController(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    controller.connections = 0  # start() makes one probe connection of its own
    return SmtpPeer(controller, handler, port)


@dataclass
class TlsCert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def authenticator_for(user: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting exactly one LOGIN/PLAIN user."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    return authenticate


def make_test_cert(folder: Path) -> TlsCert:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsCert(cert_path, key_path)
