"""A real SMTP server (aiosmtpd) on loopback that records messages and can be told to fail.

Recipients steer it: ``reject-...@`` gets 550 at RCPT, ``tempfail<N>-...@`` gets 451 for the
first N attempts, then is accepted.
"""

from __future__ import annotations

import email
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.net import free_port

_TEMPFAIL = re.compile(r"^tempfail(\d+)-")


@dataclass
class RecordingHandler:
    messages: list[Message] = field(default_factory=list)
    rcpt_attempts: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@", 1)[0].lower()
        with self.lock:
            self.rcpt_attempts[address] += 1
            attempt = self.rcpt_attempts[address]
        if local.startswith("reject-"):
            return "550 5.1.1 Mailbox does not exist"
        match = _TEMPFAIL.match(local)
        if match and attempt <= int(match.group(1)):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(envelope.original_content or b"")
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in (m.get("To") or "")]


class SmtpServer:
    """Start/stop a recording SMTP server on a free loopback port."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self._port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self._port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def body_text(message: Message) -> str:
    """All text parts of a message, decoded."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)
