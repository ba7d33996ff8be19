"""SMPP 3.4 provider: one bound transceiver session with a window, a rate limit and receipts.

``smpp://system_id:password@host:port?source=Passpost&window=10&rate=100&enquire_link=30``
(further query keys: source_ton, source_npi, system_type, timeout, connect_timeout).

Sends from many coroutines share the session: each submit_sm takes a window slot until its
submit_sm_resp (matched by sequence number) arrives. A dropped session is re-bound in the
background; sends in flight at the drop fail with ``TransientError`` (the ledger retries
them), sends not yet written wait for the new bind. A long text goes out as concatenated
parts, in order; its ``provider_message_id`` is the first part's id, and its parts'
receipts fold into one ``Receipt`` under that id. Delivery receipts (deliver_sm) reach
``on_receipt`` and are acknowledged only after it returns, so a failing callback makes the
SMSC send the receipt again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from passpost.channels.base import (
    ChannelError,
    PermanentError,
    Receipt,
    ReceiptCallback,
    SendResult,
    SmsMessage,
    TransientError,
)
from passpost.channels.phone import normalize_phone
from passpost.channels.sms import smpp_pdu
from passpost.channels.sms.smpp_pdu import Address
from passpost.channels.sms.smpp_receipts import (
    ReceiptEvent,
    ReceiptPump,
    ReceiptRouter,
    receipt_of,
)
from passpost.channels.sms.smpp_session import (
    ConnectionLost,
    RateLimiter,
    ResponseHook,
    ResponseTimeout,
    Session,
)
from passpost.channels.sms.smpp_text import EncodedText, TextTooLong, encode_text

log = logging.getLogger(__name__)

DEFAULT_PORT = 2775
MAX_SEQUENCE = 0x7FFFFFFF
NO_SOURCE = Address(0, 0, "")  # the SMSC fills in the account's default sender
_DIGITS = re.compile(r"\+?\d{1,20}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


class BindFailed(Exception):
    """Connecting or binding did not work (the reason is kept for waiting sends)."""


@dataclass(frozen=True)
class SmppConfig:
    """Everything an ``smpp://`` URL says."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    source: Address = NO_SOURCE
    window: int = 10  # outstanding submit_sm without a response
    rate: float = 0.0  # submit_sm per second; 0 = unlimited
    enquire_link: float = 30.0  # seconds of silence before a keep-alive
    timeout: float = 30.0  # seconds to wait for any response
    connect_timeout: float = 10.0  # seconds a send waits for a bound session

    @classmethod
    def from_url(cls, url: str) -> SmppConfig:
        """Parse ``smpp://system_id:password@host:port?source=…&…`` (see module docs)."""
        parts = urlsplit(url)
        if parts.scheme != "smpp":
            raise ValueError(f"not an smpp:// URL: {parts.scheme}://")
        if not parts.hostname:
            raise ValueError("smpp:// URL needs a host")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        system_id = unquote(parts.username or "")
        password = unquote(parts.password or "")
        system_type = query.get("system_type", "")
        # SMPP 3.4 field sizes (C-octet strings, the NUL not counted).
        for label, value, limit in (
            ("system_id", system_id, 15),
            ("password", password, 8),
            ("system_type", system_type, 12),
        ):
            if len(value) > limit:
                raise ValueError(f"SMPP {label} is longer than {limit} characters")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORT,
            system_id=system_id,
            password=password,
            system_type=system_type,
            source=source_address(
                query.get("source", ""),
                ton=_int_or_none(query.get("source_ton")),
                npi=_int_or_none(query.get("source_npi")),
            ),
            window=max(1, int(query.get("window", 10))),
            rate=float(query.get("rate", 0)),
            enquire_link=float(query.get("enquire_link", 30)),
            timeout=float(query.get("timeout", 30)),
            connect_timeout=float(query.get("connect_timeout", 10)),
        )


def _int_or_none(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)


def source_address(source: str, *, ton: int | None = None, npi: int | None = None) -> Address:
    """The sender: ``+number`` is international, digits unknown-type, else alphanumeric."""
    if _DIGITS.fullmatch(source):
        auto = (1, 1) if source.startswith("+") else (0, 1)
        source = source.removeprefix("+")
    elif source:
        if len(source) > 11:
            raise ValueError("an alphanumeric SMS sender has at most 11 characters")
        auto = (5, 0)
    else:
        return NO_SOURCE if ton is None and npi is None else Address(ton or 0, npi or 0, "")
    return Address(auto[0] if ton is None else ton, auto[1] if npi is None else npi, source)


def destination_address(number: str) -> Address:
    """An E.164 number as an international ISDN address."""
    if number.startswith("+"):
        return Address(1, 1, number[1:])
    return Address(0, 1, number)


def check_status(response: smpp_pdu.Response) -> smpp_pdu.Response:
    """The response itself when its command_status is ESME_ROK, else the matching error."""
    status = response.status
    if status == smpp_pdu.ESME_ROK:
        return response
    reason = f"{response.command} {smpp_pdu.status_name(status)}"
    if status in smpp_pdu.TRANSIENT_STATUSES:
        raise TransientError(reason)
    raise PermanentError(reason)


class SmppProvider:
    """An ``SmsProvider`` speaking SMPP 3.4 as a transceiver (see the module docstring).

    One instance belongs to one event loop; it connects on the first send.
    """

    name = "smpp"

    def __init__(
        self,
        config: SmppConfig,
        on_receipt: ReceiptCallback | None = None,
        default_region: str = "US",
    ) -> None:
        self.config = config
        self._on_receipt = on_receipt
        self._default_region = default_region
        self._window = asyncio.Semaphore(config.window)
        self._rate = RateLimiter(config.rate)
        self._router = ReceiptRouter()
        self._sequence = 0
        self._reference = random.randrange(256)
        self._session: Session | None = None
        self._bound = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._last_error = "not connected yet"
        self._receipts: ReceiptPump[tuple[Session, int, ReceiptEvent, Receipt]] = ReceiptPump(
            self._hand_over
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        on_receipt: ReceiptCallback | None = None,
        *,
        default_region: str = "US",
        **overrides: Any,
    ) -> SmppProvider:
        """A provider for ``smpp://system_id:password@host:port?…``.

        ``overrides`` replace ``SmppConfig`` fields the URL set (e.g. ``window=50``);
        ``default_region`` reads numbers that are not E.164 as national numbers of it.
        """
        config = dataclasses.replace(SmppConfig.from_url(url), **overrides)
        return cls(config, on_receipt=on_receipt, default_region=default_region)

    def _normalize(self, number: str) -> str:
        # The ledger hands over E.164 already; anything else gets the full phonenumbers check.
        return normalize_phone(number, self._default_region)

    async def send(self, message: SmsMessage) -> SendResult:
        """Submit the text (in parts when long); the id is the first part's message id."""
        if self._closing:
            raise TransientError("SMPP provider is closed")
        to = message.to if _E164.fullmatch(message.to) else self._normalize(message.to)
        self._start()
        self._reference = (self._reference + 1) % 256
        try:
            encoded = encode_text(message.text, self._reference)
        except TextTooLong as exc:
            raise PermanentError(str(exc)) from exc
        destination = destination_address(to)
        if len(encoded.parts) == 1:
            response = await self._submit(destination, encoded, encoded.parts[0])
            return SendResult(provider_message_id=response.message_id)
        group = self._router.new_group(len(encoded.parts))

        def remember(response: smpp_pdu.Response) -> None:
            if response.status == smpp_pdu.ESME_ROK:
                self._router.add_part(group, response.message_id)

        try:
            # In order, one at a time: a failing part stops the rest from being sent.
            for part in encoded.parts:
                await self._submit(destination, encoded, part, remember)
        except ChannelError:
            self._router.abandon(group)
            raise
        return SendResult(provider_message_id=group.message_id, detail=f"{group.total} parts")

    async def aclose(self) -> None:
        """Hand over pending receipts, unbind, and close the session."""
        self._closing = True
        await self._receipts.join(self.config.timeout)
        session = self._session
        if session is not None and not session.closed and self._bound.is_set():
            sequence = self._next_sequence()
            with contextlib.suppress(ConnectionLost, ResponseTimeout, TimeoutError):
                async with asyncio.timeout(min(self.config.timeout, 5.0)):
                    await session.request(sequence, smpp_pdu.simple("unbind", sequence))
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if session is not None:
            session.close("provider closed")
        self._bound.set()  # wake sends waiting for a bind: they see _closing and give up

    async def _submit(
        self,
        destination: Address,
        encoded: EncodedText,
        short_message: bytes,
        on_response: ResponseHook | None = None,
    ) -> smpp_pdu.Response:
        async with self._window:
            if self._rate.limited:
                await self._rate.acquire()
            session = self._ready_session() or await self._bound_session()
            sequence = self._next_sequence()
            data = smpp_pdu.submit_sm(
                sequence,
                source=self.config.source,
                destination=destination,
                esm_class=encoded.esm_class,
                data_coding=encoded.data_coding,
                short_message=short_message,
            )
            try:
                future = session.request(sequence, data, on_response)
                if session.congested:
                    await session.drain()
                response = await future
            except ConnectionLost as exc:
                raise TransientError(f"SMPP session lost before submit_sm_resp: {exc}") from exc
            except ResponseTimeout as exc:
                raise TransientError(f"submit_sm: {exc}") from exc
        return check_status(response)

    def _ready_session(self) -> Session | None:
        session = self._session
        if session is not None and not session.closed and self._bound.is_set():
            return session
        return None

    async def _bound_session(self) -> Session:
        """Wait (up to connect_timeout) for a bound session."""
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                while True:
                    if self._closing:
                        raise TransientError("SMPP provider is closed")
                    session = self._session
                    if session is not None and not session.closed and self._bound.is_set():
                        return session
                    if session is not None and session.closed:
                        self._bound.clear()
                    await self._bound.wait()
                    if not self._closing and (self._session is None or self._session.closed):
                        await asyncio.sleep(0.01)  # the supervisor has yet to notice the drop
        except TimeoutError as exc:
            raise TransientError(f"SMPP not bound: {self._last_error}") from exc

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % MAX_SEQUENCE + 1
        return self._sequence

    def _start(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        """Connect, bind, keep alive; after a drop, back off and do it again."""
        backoff = 0.1
        while not self._closing:
            try:
                session = await self._connect_and_bind()
            except BindFailed as exc:
                self._last_error = str(exc)
                log.warning("SMPP %s:%s: %s", self.config.host, self.config.port, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.1
            self._session = session
            self._bound.set()
            log.info("SMPP bound to %s:%s", self.config.host, self.config.port)
            await self._keep_alive(session)
            self._bound.clear()
            self._last_error = session.reason
            if not self._closing:
                log.warning("SMPP session ended (%s); re-binding", session.reason)

    async def _connect_and_bind(self) -> Session:
        config = self.config
        try:
            async with asyncio.timeout(config.connect_timeout):
                session = await Session.connect(
                    config.host, config.port, self._on_request, config.timeout
                )
        except (OSError, TimeoutError) as exc:
            raise BindFailed(f"cannot connect: {exc or type(exc).__name__}") from exc
        sequence = self._next_sequence()
        bind = smpp_pdu.bind_transceiver(
            sequence,
            system_id=config.system_id,
            password=config.password,
            system_type=config.system_type,
        )
        try:
            response = await session.request(sequence, bind)
        except (ConnectionLost, ResponseTimeout) as exc:
            session.close("bind failed")
            raise BindFailed(f"no bind_transceiver_resp: {exc or type(exc).__name__}") from exc
        if response.status != smpp_pdu.ESME_ROK:
            session.close("bind rejected")
            raise BindFailed(f"bind_transceiver rejected: {smpp_pdu.status_name(response.status)}")
        return session

    async def _keep_alive(self, session: Session) -> None:
        """Return when ``session`` ends; probe it with enquire_link after a silence."""
        interval = self.config.enquire_link
        while not session.closed:
            idle = time.monotonic() - session.last_received
            if idle < interval:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval - idle):
                        await session.wait_closed()
                continue
            sequence = self._next_sequence()
            try:
                await session.request(sequence, smpp_pdu.simple("enquire_link", sequence))
            except ResponseTimeout:
                session.close("no enquire_link_resp")
            except ConnectionLost:
                return

    def _on_request(self, session: Session, sequence: int, data: bytes) -> None:
        command_id = smpp_pdu.HEADER.unpack_from(data)[1]
        if command_id == smpp_pdu.DELIVER_SM:
            self._on_deliver_sm(session, sequence, data)
        elif command_id == smpp_pdu.ENQUIRE_LINK:
            session.write(smpp_pdu.simple("enquire_link_resp", sequence))
        elif command_id == smpp_pdu.UNBIND:
            session.write(smpp_pdu.simple("unbind_resp", sequence))
            session.close("the SMSC unbound", flush=True)
        else:
            session.write(smpp_pdu.simple("generic_nack", sequence, smpp_pdu.ESME_RINVCMDID))

    def _on_deliver_sm(self, session: Session, sequence: int, data: bytes) -> None:
        try:
            event = receipt_of(smpp_pdu.parse_deliver_sm(data))
        except (ValueError, IndexError, struct.error):
            log.warning("undecodable deliver_sm: %s", data.hex())
            # A permanent application error: the SMSC should not send this one again.
            session.write_later(smpp_pdu.deliver_sm_resp(sequence, smpp_pdu.ESME_RX_P_APPN))
            return
        receipt = self._router.route(event) if event is not None else None
        if receipt is None or self._on_receipt is None:
            # Not a receipt (an MO text), not final, or a part of a message still in flight.
            session.write_later(smpp_pdu.deliver_sm_resp(sequence))
            return
        assert event is not None
        self._receipts.put((session, sequence, event, receipt))

    async def _hand_over(self, item: tuple[Session, int, ReceiptEvent, Receipt]) -> None:
        session, sequence, event, receipt = item
        assert self._on_receipt is not None
        status = smpp_pdu.ESME_ROK
        try:
            await self._on_receipt(receipt)
        except Exception:  # the SMSC retries the receipt on a temporary error
            log.exception("receipt callback failed for %s", receipt.provider_message_id)
            self._router.reopen(event)
            status = smpp_pdu.ESME_RX_T_APPN
        session.write_later(smpp_pdu.deliver_sm_resp(sequence, status))
