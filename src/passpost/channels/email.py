"""The e-mail channel: SMTP through a small pool of reused ``aiosmtplib`` connections."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from passpost.channels.base import (
    ChannelError,
    EmailMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from passpost.channels.mime import Composed, compose, message_id_for

__all__ = ["SmtpConfig", "SmtpSender", "classify_response", "compose_message", "message_id_for"]

Security = Literal["none", "starttls", "ssl"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, ssl.SSLError, aiosmtplib.SMTPException)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail (from ``PASSPOST_SMTP_URL`` or ``/api/v1/mailconfig``)."""

    host: str
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    default_sender: str = "passpost@localhost"
    default_sender_name: str | None = None
    concurrency: int = 8
    timeout: float = 30.0
    verify_tls: bool = True
    ca_file: str | None = None
    message_id_domain: str = "passpost"
    # A connection idle longer than this is probed with NOOP before reuse.
    idle_check_seconds: float = 30.0

    @classmethod
    def from_url(
        cls, url: str, *, default_sender: str | None = None, concurrency: int | None = None
    ) -> SmtpConfig:
        """Parse ``smtp://user:pass@host:port?starttls=1`` or ``smtps://...``.

        Query options: ``starttls``, ``from`` (default sender), ``from_name``,
        ``verify`` (0 disables certificate checks), ``ca_file``, ``timeout``,
        ``concurrency``. Raises ``ValueError`` with a readable reason.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, not {scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "").lower() in _TRUE
        security: Security = "ssl" if scheme == "smtps" else "starttls" if starttls else "none"
        try:
            port = parts.port or (465 if security == "ssl" else 587 if starttls else 25)
            timeout = float(query.get("timeout", 30.0))
            limit = int(query.get("concurrency", concurrency or 8))
        except ValueError as exc:
            raise ValueError(f"SMTP URL has an invalid number: {exc}") from exc
        config = cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            default_sender=query.get("from") or default_sender or "passpost@localhost",
            default_sender_name=query.get("from_name") or None,
            concurrency=limit,
            timeout=timeout,
            verify_tls=query.get("verify", "1").lower() in _TRUE,
            ca_file=query.get("ca_file") or None,
        )
        return config.validated()

    def validated(self) -> SmtpConfig:
        """This config, or ``ValueError`` when a value is out of range."""
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is out of range")
        if self.concurrency < 1:
            raise ValueError("SMTP concurrency must be at least 1")
        if self.timeout <= 0:
            raise ValueError("SMTP timeout must be positive")
        return self

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for STARTTLS/SSL, or ``None`` without TLS."""
        if self.security == "none":
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def compose_message(message: EmailMessage, config: SmtpConfig) -> Composed:
    """The MIME bytes and envelope of ``message`` (defaults for the sender from ``config``)."""
    name = message.sender_name or ("" if message.sender_email else config.default_sender_name)
    return compose(
        key=message.key,
        sender=message.sender_email or config.default_sender,
        sender_name=name,
        to=message.to,
        subject=message.subject,
        html=message.html,
        text=message.text,
        attachment=message.attachment,
        message_id_domain=config.message_id_domain,
    )


def classify_response(code: int, text: str) -> ChannelError:
    """An SMTP reply as a channel error: 5xx permanent, anything else transient."""
    reason = f"{code} {' '.join(text.split())}".strip()
    return PermanentError(reason) if 500 <= code < 600 else TransientError(reason)


_MAIL_OK = frozenset({250})
_RCPT_OK = frozenset({250, 251})


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO if refused) once per connection, unless TLS or login already did it:
    ``_envelope`` leaves it to the connection."""
    if not client.is_ehlo_or_helo_needed:
        return
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def _envelope(
    client: aiosmtplib.SMTP, verb: bytes, argument: bytes, accepted: frozenset[int]
) -> None:
    """MAIL or RCPT for an address ``compose`` has already checked (plain ASCII, no
    brackets, spaces or line breaks). aiosmtplib's ``mail``/``rcpt`` parse the address
    again with ``email.utils`` first: ~20 µs a message, an eighth of the channel's time."""
    response = await client.execute_command(verb, argument, timeout=None)
    if response.code not in accepted:
        raise aiosmtplib.SMTPResponseException(response.code, response.message)


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    last_used: float


class _StaleConnection(Exception):
    """A reused connection broke before the message was handed over: safe to retry."""


class SmtpSender:
    """``EmailSender`` over SMTP: at most ``concurrency`` connections, reused between sends.

    Use one instance per event loop. A connection dropped while idle is replaced
    transparently; a drop during DATA is a ``TransientError`` (the Message-ID lets the
    receiving side spot the duplicate a retry may cause).
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config.validated()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._idle: list[_Connection] = []
        self._closed = False
        self.connections_opened = 0

    async def send(self, message: EmailMessage) -> SendResult:
        """Submit one message; raise ``TransientError`` or ``PermanentError`` on failure."""
        if self._closed:
            raise TransientError("The SMTP sender is closed.")
        composed = compose_message(message, self.config)
        async with self._slots:
            reply = await self._submit(composed.sender, composed.recipient, composed.data)
        return SendResult(provider_message_id=composed.message_id, detail=reply)

    async def check(self) -> None:
        """Connect (TLS and login included) and quit; raise ``TransientError`` if it fails."""
        connection = await self._connect()
        await self._discard(connection)

    async def aclose(self) -> None:
        """Quit every idle connection; later sends fail."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._discard(c) for c in idle))

    async def _submit(self, sender: str, recipient: str, data: bytes) -> str:
        connection = self._take_idle()
        idle_for = time.monotonic() - connection.last_used if connection else 0.0
        if connection is not None and idle_for > self.config.idle_check_seconds:
            connection = await self._probe(connection)
        if connection is not None:
            try:
                return await self._transact(connection, sender, recipient, data, reused=True)
            except _StaleConnection:
                await self._discard(connection)
        connection = await self._connect()
        try:
            return await self._transact(connection, sender, recipient, data, reused=False)
        except _StaleConnection as exc:  # not raised for fresh connections; keeps mypy honest
            raise TransientError(str(exc)) from exc

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected:
                return connection
        return None

    async def _probe(self, connection: _Connection) -> _Connection | None:
        try:
            await connection.client.noop()
        except _CONNECTION_ERRORS:
            await self._discard(connection)
            return None
        return connection

    async def _connect(self) -> _Connection:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password if config.username else None,
            use_tls=config.security == "ssl",
            start_tls=config.security == "starttls",
            tls_context=config.tls_context(),
            timeout=config.timeout,
        )
        try:
            await client.connect()
            await _greet(client)
        except aiosmtplib.SMTPResponseException as exc:
            # The server refused passpost (greeting, AUTH), not this message: retry later.
            raise TransientError(
                f"SMTP server {config.host}:{config.port} refused the session: "
                f"{exc.code} {exc.message}"
            ) from exc
        except _CONNECTION_ERRORS as exc:
            raise TransientError(
                f"Cannot connect to SMTP server {config.host}:{config.port}: {exc}"
            ) from exc
        self.connections_opened += 1
        return _Connection(client, time.monotonic())

    async def _transact(
        self, connection: _Connection, sender: str, recipient: str, data: bytes, *, reused: bool
    ) -> str:
        # One deadline for the envelope and one for the message: aiosmtplib's own timeout
        # wraps every command in asyncio.wait_for, a quarter of the channel's CPU per message.
        client = connection.client
        try:
            async with asyncio.timeout(self.config.timeout):
                await _envelope(client, b"MAIL", b"FROM:<" + sender.encode() + b">", _MAIL_OK)
                await _envelope(client, b"RCPT", b"TO:<" + recipient.encode() + b">", _RCPT_OK)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_or_discard(connection)
            raise classify_response(exc.code, exc.message) from exc
        except TimeoutError as exc:
            raise self._timed_out(connection, "the envelope") from exc
        except _CONNECTION_ERRORS as exc:
            # Nothing was handed over yet: a reused connection may just have gone stale.
            if reused:
                raise _StaleConnection(str(exc)) from exc
            await self._discard(connection)
            raise TransientError(f"SMTP connection lost: {exc}") from exc
        try:
            async with asyncio.timeout(self.config.timeout):
                response = await client.data(data, timeout=None)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_or_discard(connection)
            raise classify_response(exc.code, exc.message) from exc
        except TimeoutError as exc:
            raise self._timed_out(connection, "the message") from exc
        except _CONNECTION_ERRORS as exc:
            await self._discard(connection)
            raise TransientError(f"SMTP connection lost during DATA: {exc}") from exc
        await self._release(connection)
        return f"{response.code} {response.message}"

    def _timed_out(self, connection: _Connection, what: str) -> TransientError:
        # A reply may still come: the connection cannot be trusted to pair the next one.
        connection.client.close()
        return TransientError(
            f"SMTP server {self.config.host}:{self.config.port} did not answer "
            f"{what} within {self.config.timeout:g} s"
        )

    async def _release(self, connection: _Connection) -> None:
        connection.last_used = time.monotonic()
        if self._closed or not connection.client.is_connected:
            await self._discard(connection)
            return
        self._idle.append(connection)

    async def _reset_or_discard(self, connection: _Connection) -> None:
        # A refused command may leave a half-open transaction; RSET makes the link reusable.
        try:
            await connection.client.rset()
        except _CONNECTION_ERRORS:
            await self._discard(connection)
            return
        await self._release(connection)

    async def _discard(self, connection: _Connection) -> None:
        client = connection.client
        if not client.is_connected:
            return
        try:
            await asyncio.wait_for(client.quit(), timeout=5)
        except _CONNECTION_ERRORS:
            client.close()
