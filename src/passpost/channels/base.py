"""The one small interface every channel implements: messages in, results or errors out.

Channels know nothing of the web or the database. The worker turns results into ledger
states: ``SendResult`` → ``submitted``; ``TransientError`` → retry with backoff;
``PermanentError`` → ``rejected`` (the reason kept). Receipts arrive later as ``Receipt``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class ChannelError(Exception):
    """A send failed; ``reason`` is what the server or provider said."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(ChannelError):
    """Worth retrying later (SMTP 4xx, throttling, connection trouble, provider 5xx)."""


class PermanentError(ChannelError):
    """Will never succeed (SMTP 5xx, invalid number, provider rejection)."""


@dataclass(frozen=True)
class EmailMessage:
    key: str  # idempotency key derived from the ledger row; becomes the Message-ID
    to: str
    subject: str
    html: str
    text: str
    sender_email: str | None = None
    sender_name: str | None = None
    attachment: tuple[str, bytes] | None = None  # (filename, .pkpass bytes)


@dataclass(frozen=True)
class SmsMessage:
    key: str  # idempotency key derived from the ledger row (client reference)
    to: str  # E.164
    text: str


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt: the handset got it (``delivered``) or the provider gave up."""

    provider_message_id: str
    delivered: bool
    detail: str = ""


ReceiptCallback = Callable[[Receipt], Awaitable[None]]


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> SendResult: ...

    async def aclose(self) -> None: ...


class SmsProvider(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> SendResult: ...

    async def aclose(self) -> None: ...
