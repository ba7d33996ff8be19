"""One SMPP TCP session on asyncio: PDU framing, responses matched by sequence number."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from passpost.channels.sms import smpp_pdu

log = logging.getLogger(__name__)

RequestHandler = Callable[["Session", int, bytes], None]
ResponseHook = Callable[[smpp_pdu.Response], None]


class ConnectionLost(Exception):
    """The session ended before the response came."""


class ResponseTimeout(Exception):
    """No response within the session's response timeout."""


class Session(asyncio.Protocol):
    """A connected socket: send requests, await their responses, hand requests to a handler.

    ``on_request(session, sequence, pdu)`` gets every PDU the peer initiates (deliver_sm,
    enquire_link, unbind …); responses resolve the future of the request with that sequence.
    A protocol rather than a stream reader: every PDU in a received chunk is handled in one
    call, without a coroutine switch per PDU.
    """

    def __init__(self, on_request: RequestHandler, response_timeout: float) -> None:
        self._on_request = on_request
        self._timeout = response_timeout
        # Insertion order is deadline order (one timeout for all), so the sweep stops early.
        self._pending: dict[
            int, tuple[asyncio.Future[smpp_pdu.Response], ResponseHook | None, float]
        ] = {}
        self._buffer = bytearray()
        self._later: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._closed = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reason = "connection closed"
        self.last_received = time.monotonic()
        self._sweeper_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, on_request: RequestHandler, response_timeout: float
    ) -> Session:
        """Open a TCP connection to the SMSC."""
        loop = asyncio.get_running_loop()
        _transport, session = await loop.create_connection(
            lambda: cls(on_request, response_timeout), host, port
        )
        return session

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the response-timeout sweeper."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._sweeper_task = asyncio.get_running_loop().create_task(self._sweep_loop())

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: fail what is pending."""
        self.close(f"connection error: {exc}" if exc else "connection closed by the SMSC")

    def pause_writing(self) -> None:
        """The send buffer is over its high-water mark."""
        self._writable.clear()

    def resume_writing(self) -> None:
        """The send buffer drained."""
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        """Split the stream into PDUs and dispatch each."""
        buffer = self._buffer
        buffer += data
        self.last_received = time.monotonic()
        while len(buffer) >= 16 and not self.closed:
            length, command_id, _status, sequence = smpp_pdu.HEADER.unpack_from(buffer)
            if not 16 <= length <= smpp_pdu.MAX_PDU:
                log.warning("SMPP stream corrupt (PDU length %d), dropping the session", length)
                self.close(f"corrupt PDU stream: length {length}")
                return
            if len(buffer) < length:
                return
            pdu = bytes(buffer[:length])
            del buffer[:length]
            if command_id & smpp_pdu.RESPONSE_BIT or command_id == smpp_pdu.GENERIC_NACK:
                self._resolve(sequence, pdu)
            else:
                self._on_request(self, sequence, pdu)

    # --- use ------------------------------------------------------------------------

    @property
    def reason(self) -> str:
        """Why the session ended (meaningful once ``closed``)."""
        return self._reason

    @property
    def closed(self) -> bool:
        """True once the socket is gone (or going)."""
        return self._closed.is_set()

    @property
    def congested(self) -> bool:
        """True while the socket's send buffer is over its high-water mark (a slow SMSC)."""
        return not self._writable.is_set()

    async def wait_closed(self) -> None:
        """Return when the session has ended."""
        await self._closed.wait()

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark (or the session ends)."""
        if self.closed or self._writable.is_set():
            return
        writable = asyncio.ensure_future(self._writable.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        await asyncio.wait((writable, closed), return_when=asyncio.FIRST_COMPLETED)
        writable.cancel()
        closed.cancel()

    def request(
        self, sequence: int, data: bytes, on_response: ResponseHook | None = None
    ) -> asyncio.Future[smpp_pdu.Response]:
        """Write a request PDU; the future resolves to the parsed response.

        It fails with ``ResponseTimeout`` after the response timeout (one sweeper task
        rather than a timer per request) and with ``ConnectionLost`` if the session ends.

        ``on_response`` runs as the response is read, before any later PDU is looked at —
        the place to record a message id that the very next PDU (its receipt) may refer to.
        """
        if self.closed:
            raise ConnectionLost(self._reason)
        future: asyncio.Future[smpp_pdu.Response] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = (future, on_response, time.monotonic() + self._timeout)
        self.write(data)
        return future

    def write(self, data: bytes) -> None:
        """Write a PDU now.

        Straight to the transport: queueing PDUs for one write per loop iteration saved
        syscalls but cost every round trip an extra iteration, and throughput with a small
        window is bounded by the round trip (measured with bench/fanout_sms.py).
        """
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def write_later(self, data: bytes) -> None:
        """Queue a PDU nobody waits on (a receipt's deliver_sm_resp) for one batched write.

        Requests go out at once (a round trip bounds the window's throughput); answers to
        the SMSC can wait for the end of the loop iteration and share a single syscall.
        """
        if self.closed:
            return
        if not self._later:
            asyncio.get_running_loop().call_soon(self._flush_later)
        self._later.append(data)

    def _flush_later(self) -> None:
        if self._later and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._later))
        self._later.clear()

    def close(self, reason: str, *, flush: bool = False) -> None:
        """End the session; every pending request fails with ``ConnectionLost``.

        ``flush`` lets what is already written (a final unbind_resp) go out before closing;
        otherwise the socket is dropped at once.
        """
        if self.closed:
            return
        if flush:
            self._flush_later()
        self._reason = reason
        self._closed.set()
        if self._transport is not None:
            if flush:
                self._transport.close()
            else:
                self._transport.abort()
        pending, self._pending = self._pending, {}
        for future, _hook, _deadline in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        if self._sweeper_task is not None and self._sweeper_task is not asyncio.current_task():
            self._sweeper_task.cancel()

    def _resolve(self, sequence: int, data: bytes) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is None:
            return  # late answer to a request we gave up on
        future, hook, _deadline = entry
        if future.done():
            return
        response = smpp_pdu.parse_response(data)
        if hook is not None:
            hook(response)
        future.set_result(response)

    async def _sweep_loop(self) -> None:
        period = min(1.0, self._timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for sequence, (future, _hook, deadline) in list(self._pending.items()):
                if deadline > now:
                    break
                del self._pending[sequence]
                if not future.done():
                    future.set_exception(ResponseTimeout(f"no response within {self._timeout:g}s"))


class RateLimiter:
    """At most ``rate`` acquisitions per second, evenly spaced; ``rate <= 0`` is unlimited."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    @property
    def limited(self) -> bool:
        """False for an unlimited rate (callers can skip ``acquire``)."""
        return bool(self._interval)

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)
