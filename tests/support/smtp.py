"""The suite's one SMTP peer: a real aiosmtpd server on loopback that records what it accepts.

Recipients steer it (the local part's prefix):

- ``reject-…`` / ``reject550-…``: 550 at RCPT;
- ``tempfail<N>-…``: 451 for the first N attempts, then accepted (``temp451-…`` = N=1);
- ``data554-…``: 554 after DATA;
- ``slow<ms>-…``: DATA answered after that many milliseconds.

A sender ``refused-…`` gets 553 at MAIL; ``handler.helo_only`` answers EHLO with 502 (a
server that speaks only HELO).

``SmtpServer()`` is a context manager; ``start_peer(**controller_kwargs)`` starts one (TLS,
authentication...). ``make_test_cert`` and ``authenticator_for`` serve TLS and AUTH tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import ipaddress
import re
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.net import free_port

_TEMPFAIL = re.compile(r"^(?:tempfail(\d+)|temp451)-")
_SLOW = re.compile(r"^slow(\d+)-")


@dataclass
class Received:
    """One accepted message; ``received["To"]`` reads a header of the parsed message."""

    sender: str
    recipients: list[str]
    content: bytes
    tls: bool
    login: str | None

    @cached_property
    def message(self) -> Message:
        return email.message_from_bytes(self.content)

    def __getitem__(self, header: str) -> Any:
        return self.message[header]


@dataclass
class ScriptedHandler:
    """Accepts mail, except what the recipient's prefix scripts (see the module docstring)."""

    messages: list[Received] = field(default_factory=list)
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    helo_only: bool = False

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if self.helo_only:
            return ["502 5.5.2 Error: command not recognized"]
        session.host_name = hostname  # the server leaves it to a handler with this hook
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.split("@", 1)[0].lower().startswith("refused-"):
            return "553 5.7.1 <" + address + ">: Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@", 1)[0].lower()
        with self.lock:
            self.rcpt_attempts[address] += 1
            attempt = self.rcpt_attempts[address]
        if local.startswith(("reject-", "reject550")):
            return "550 5.1.1 <" + address + ">: Recipient address rejected: User unknown"
        tempfail = _TEMPFAIL.match(local)
        if tempfail and attempt <= int(tempfail.group(1) or 1):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        locals_ = [r.split("@", 1)[0].lower() for r in envelope.rcpt_tos]
        if any(local.startswith("data554") for local in locals_):
            return "554 5.7.1 Message rejected as spam"
        delays = [int(m.group(1)) for m in map(_SLOW.match, locals_) if m]
        if delays:
            await asyncio.sleep(max(delays) / 1000)
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        # session.ssl is only set by STARTTLS; implicit TLS shows on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        received = Received(
            sender=str(envelope.mail_from),
            recipients=list(envelope.rcpt_tos),
            content=bytes(envelope.original_content or b""),
            tls=tls,
            login=login,
        )
        with self.lock:
            self.messages.append(received)
        return "250 2.0.0 Ok: queued"

    def to(self, address: str) -> list[Message]:
        """The parsed messages whose ``To`` names ``address``."""
        with self.lock:
            return [r.message for r in self.messages if address in (r["To"] or "")]


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


class SmtpServer:
    """The SMTP peer on a free loopback port (or ``port``); ``with SmtpServer() as smtp``."""

    def __init__(self, port: int | None = None, **controller_kwargs: Any) -> None:
        self.handler = ScriptedHandler()
        self.port = port or free_port()
        self.controller = CountingController(
            self.handler, hostname="127.0.0.1", port=self.port, **controller_kwargs
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        self.controller.connections = 0  # start() makes one probe connection of its own
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return self.controller.connections


def start_peer(port: int | None = None, **controller_kwargs: Any) -> SmtpServer:
    """A started peer; ``controller_kwargs`` go to aiosmtpd (``tls_context``, ``auth_*``...)."""
    return SmtpServer(port, **controller_kwargs).start()


def body_text(message: Message) -> str:
    """All text parts of a message, decoded."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)


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
