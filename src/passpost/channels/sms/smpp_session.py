"""One SMPP TCP session on asyncio: PDU framing, responses matched by sequence number."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from passpost.channels.sms import smpp_pdu

log = logging.getLogger(__name__)

RequestHandler = Callable[["Session", int, bytes], None]
ResponseHook = Callable[[Any], None]


class ConnectionLost(Exception):
    """The session ended before the response came."""


class ResponseTimeout(Exception):
    """No response within the session's response timeout."""


class Session:
    """A connected socket: send requests, await their responses, hand requests to a handler.

    ``on_request(session, sequence, pdu)`` gets every PDU the peer initiates (deliver_sm,
    enquire_link, unbind …); responses resolve the future of the request with that sequence.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: RequestHandler,
        response_timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._timeout = response_timeout
        # Insertion order is deadline order (one timeout for all), so the sweep stops early.
        self._pending: dict[int, tuple[asyncio.Future[Any], ResponseHook | None, float]] = {}
        self._outbox: list[bytes] = []
        self._closed = asyncio.Event()
        self._reason = "connection closed"
        self.last_received = time.monotonic()
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read_loop())
        self._sweeper_task = loop.create_task(self._sweep_loop())

    @property
    def reason(self) -> str:
        """Why the session ended (meaningful once ``closed``)."""
        return self._reason

    @property
    def closed(self) -> bool:
        """True once the socket is gone (or going)."""
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        """Return when the session has ended."""
        await self._closed.wait()

    def request(
        self, sequence: int, data: bytes, on_response: ResponseHook | None = None
    ) -> asyncio.Future[Any]:
        """Write a request PDU; the future resolves to the parsed response.

        It fails with ``ResponseTimeout`` after the response timeout (one sweeper task
        rather than a timer per request) and with ``ConnectionLost`` if the session ends.

        ``on_response`` runs inside the read loop, before any later PDU is looked at — the
        place to record a message id that the very next PDU (its receipt) may refer to.
        """
        if self.closed:
            raise ConnectionLost(self._reason)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = (future, on_response, time.monotonic() + self._timeout)
        self.write(data)
        return future

    def write(self, data: bytes) -> None:
        """Queue a PDU for this loop iteration's single socket write."""
        if self.closed:
            return
        # Many coroutines submit in the same iteration: one send() syscall for all of them.
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(data)

    def _flush(self) -> None:
        if self._outbox and not self.closed:
            self._writer.write(b"".join(self._outbox))
        self._outbox.clear()

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        if not self.closed:
            try:
                await self._writer.drain()
            except (ConnectionError, OSError) as exc:
                self.close(f"write failed: {exc}")

    def close(self, reason: str, *, flush: bool = False) -> None:
        """End the session; every pending request fails with ``ConnectionLost``.

        ``flush`` sends what is already written (a final unbind_resp) before closing;
        otherwise the socket is dropped at once.
        """
        if self.closed:
            return
        self._reason = reason
        self._closed.set()
        if flush:
            self._flush()
            self._writer.close()
        else:
            self._writer.transport.abort()
        pending, self._pending = self._pending, {}
        for future, _hook, _deadline in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        for task in (self._reader_task, self._sweeper_task):
            if task is not asyncio.current_task():
                task.cancel()

    async def _read_loop(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(16)
                length, command_id, _status, sequence = smpp_pdu.HEADER.unpack(header)
                if not 16 <= length <= smpp_pdu.MAX_PDU:
                    raise ValueError(f"PDU length {length} out of range")
                body = await self._reader.readexactly(length - 16) if length > 16 else b""
                self.last_received = time.monotonic()
                if command_id & smpp_pdu.RESPONSE_BIT or command_id == smpp_pdu.GENERIC_NACK:
                    self._resolve(sequence, header + body)
                else:
                    self._on_request(self, sequence, header + body)
        except asyncio.IncompleteReadError:
            self.close("connection closed by the SMSC")
        except (ConnectionError, OSError) as exc:
            self.close(f"connection error: {exc}")
        except ValueError as exc:
            log.warning("SMPP stream corrupt, dropping the session: %s", exc)
            self.close(f"corrupt PDU stream: {exc}")

    def _resolve(self, sequence: int, data: bytes) -> None:
        entry = self._pending.pop(sequence, None)
        if entry is None:
            return  # late answer to a request we gave up on
        future, hook, _deadline = entry
        if future.done():
            return
        try:
            pdu = smpp_pdu.parse(data)
            if hook is not None:
                hook(pdu)
        except Exception as exc:  # noqa: BLE001 - an undecodable answer fails only its request
            future.set_exception(ValueError(f"undecodable response: {exc!r}"))
            return
        future.set_result(pdu)

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

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)
