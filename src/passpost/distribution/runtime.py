"""The worker's long-lived channel connections, on one asyncio loop in a background thread.

Queue tasks run in worker threads; they hand their sends to this loop, so SMTP connections,
the SMPP bind and its receipts survive from one batch to the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from passpost.channels.base import EmailSender, Receipt, SmsProvider
from passpost.channels.email import SmtpConfig, SmtpSender
from passpost.channels.sms import make_sms_provider
from passpost.config import get_settings
from passpost.db import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")


class ChannelRuntime:
    """One per worker process: the event loop and the channel senders living on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="passpost-channels", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._email: tuple[SmtpConfig, EmailSender] | None = None
        self._sms: tuple[str, SmsProvider] | None = None
        self._receipts = ReceiptWriter(_store_receipts)

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the channel loop; its result arrives in the future."""
        return asyncio.run_coroutine_threadsafe(_as_coro(coro), self._loop)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the channel loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def email(self, config: SmtpConfig | None) -> EmailSender | None:
        """The e-mail sender for ``config`` (rebuilt when the configuration changed)."""
        with self._lock:
            if config is None:
                self._replace_email(None)
                return None
            if self._email is None or self._email[0] != config:
                self._replace_email((config, SmtpSender(config)))
            assert self._email is not None
            return self._email[1]

    def sms(self, url: str | None) -> SmsProvider | None:
        """The SMS provider for ``url`` (rebuilt when the configuration changed)."""
        with self._lock:
            if url is None:
                self._replace_sms(None)
                return None
            if self._sms is None or self._sms[0] != url:
                provider = self.run(_build_sms(url, self._on_receipt))
                self._replace_sms((url, provider))
            assert self._sms is not None
            return self._sms[1]

    def _replace_email(self, new: tuple[SmtpConfig, EmailSender] | None) -> None:
        if self._email is not None:
            self.run(self._email[1].aclose())
        self._email = new

    def _replace_sms(self, new: tuple[str, SmsProvider] | None) -> None:
        if self._sms is not None:
            self.run(self._sms[1].aclose())
        self._sms = new

    async def _on_receipt(self, receipt: Receipt) -> None:
        await self._receipts.store(receipt)

    def close(self) -> None:
        """Close every connection and stop the loop."""
        with self._lock:
            self._replace_email(None)
            self._replace_sms(None)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _as_coro(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _build_sms(url: str, on_receipt: Any) -> SmsProvider:
    # Built on the loop: providers may open connections or start tasks when created.
    return make_sms_provider(url, on_receipt=on_receipt)


class ReceiptWriter:
    """Receipts written in groups: one transaction for every receipt that arrived meanwhile.

    ``store`` returns once its receipt is committed (the provider acknowledges it only
    then: nothing is lost on kill -9), or raises if that transaction failed (the provider
    answers with a temporary error and the SMSC sends the receipt again). While a group is
    being written the next one gathers, so at 10,000 receipts/s the writes are a few dozen
    transactions a second rather than one each.
    """

    def __init__(self, write: Callable[[list[Receipt]], None]) -> None:
        self._write = write
        self._pending: list[tuple[Receipt, asyncio.Future[None]]] = []
        self._writing = False
        self._drainer: asyncio.Task[None] | None = None

    async def store(self, receipt: Receipt) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((receipt, done))
        if not self._writing:
            self._writing = True
            self._drainer = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await loop.run_in_executor(None, self._write, [r for r, _ in group])
                except Exception as exc:  # noqa: BLE001 - every waiter raises it
                    for _, done in group:
                        done.set_exception(exc)
                else:
                    for _, done in group:
                        done.set_result(None)
        finally:
            self._writing = False


def _store_receipts(receipts: list[Receipt]) -> None:
    from passpost.db import utcnow
    from passpost.distribution.ledger import settle_receipts
    from passpost.distribution.service import apply_receipt

    with session_scope(get_settings().resolved_database_url, write=True) as session:
        for receipt in settle_receipts(session, receipts, utcnow()):
            apply_receipt(session, receipt)  # no such message yet: parked until it is
            log.info("receipt for %s kept until its send is recorded", receipt.provider_message_id)


_runtime: ChannelRuntime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> ChannelRuntime:
    """The process's channel runtime (started on first use)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = ChannelRuntime()
        return _runtime


def shutdown_runtime() -> None:
    """Close the process's channel runtime, if one was started."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None
