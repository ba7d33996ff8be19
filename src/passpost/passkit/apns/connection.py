"""A small HTTP/2 client transport on ``h2`` and asyncio, shaped for APNs.

Why not httpx: measured on the P4 bench, httpx/httpcore spends several times the CPU of a
bare ``h2`` connection per push (separate socket writes for headers and body, anyio layers, a
failed ``import sniffio`` per lock). APNs needs little of HTTP: POSTs with tiny bodies,
many streams per connection. Here requests made in the same loop turn leave in one write;
``GOAWAY``, stream resets, the server's stream limit, flow control and timeouts are handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

Headers = list[tuple[str, str]]


class TransportError(Exception):
    """No answer: the connection failed, the stream was reset, or time ran out."""


class StreamRefused(TransportError):
    """The server will not process the stream (it was above GOAWAY's last stream): resend."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Stream:
    future: asyncio.Future[Response]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


def _time_out(future: asyncio.Future[Response], timeout: float) -> None:
    if not future.done():
        future.set_exception(TransportError(f"Timeout: no answer within {timeout:g} s"))


def _wake(waiters: deque[asyncio.Future[None]], *, everyone: bool) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            if not everyone:
                return


class Http2Connection(asyncio.Protocol):
    """One TLS connection speaking HTTP/2 (ALPN ``h2``), many concurrent streams.

    A protocol rather than streams: every byte received is handed to ``h2`` before
    ``connection_lost`` (a StreamReader raises a pending error before returning buffered
    data, which loses a GOAWAY that arrived just before the socket broke).
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self._streams: dict[int, _Stream] = {}
        self._room: deque[asyncio.Future[None]] = deque()  # waiting for a stream slot
        self._window: deque[asyncio.Future[None]] = deque()  # waiting for flow-control credit
        self._flush_pending = False
        self._closed: TransportError | None = None
        self._going_away = False
        loop = asyncio.get_running_loop()
        self._settled: asyncio.Future[None] = loop.create_future()  # server SETTINGS seen
        self._ended: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def open(
        cls, host: str, port: int, context: ssl.SSLContext, *, timeout: float
    ) -> Http2Connection:
        """Connect, handshake TLS and check the server speaks HTTP/2."""
        loop = asyncio.get_running_loop()
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(cls, host, port, ssl=context), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"ConnectError: {exc or type(exc).__name__}") from exc
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.close()
            raise TransportError("ConnectError: the server did not negotiate HTTP/2")
        # Until the server's SETTINGS arrive its stream limit is unknown (APNs starts low and
        # raises it later); streams over the limit would cost the whole connection.
        try:
            await asyncio.wait_for(asyncio.shield(connection._settled), timeout)
        except TimeoutError as exc:
            transport.close()
            raise TransportError("ConnectError: no HTTP/2 SETTINGS from the server") from exc
        if connection._closed is not None:
            raise connection._closed
        return connection

    @property
    def finished(self) -> bool:
        """True once the connection has ended."""
        return self._ended.done()

    @property
    def available(self) -> bool:
        """True while new streams may be opened here."""
        return self._closed is None and not self._going_away

    async def request(self, headers: Headers, body: bytes, *, timeout: float) -> Response:
        """Send one request and wait for its complete response."""
        loop = asyncio.get_running_loop()
        await self._wait_for_room()
        try:
            stream_id = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError as exc:
            self._going_away = True
            raise StreamRefused("StreamRefused: stream ids exhausted") from exc
        stream = _Stream(loop.create_future())
        self._streams[stream_id] = stream
        # A timer per stream rather than wait_for(shield(...)): two futures and a task fewer
        # on every push (measured on the P4 bench).
        timer = loop.call_later(timeout, _time_out, stream.future, timeout)
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
            await self._send_body(stream_id, body)
            self._schedule_flush()
            return await stream.future
        finally:
            timer.cancel()
            if self._streams.pop(stream_id, None) is not None:
                self._abandon(stream_id)

    async def aclose(self) -> None:
        """Say goodbye (GOAWAY), close the socket, fail what is still waiting."""
        if self._closed is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
            self._flush()
        self._fail(TransportError("ConnectionClosed: the client closed the connection"))
        if self._transport is not None:
            self._transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ended), 5)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(TransportError(f"ProtocolError: {exc}"))
            self._flush()
            self._close_transport()
            return
        for event in events:
            self._on(event)
        self._flush()
        if self._going_away and not self._streams:
            self._fail(TransportError("ConnectionClosed: the server sent GOAWAY"))
            self._close_transport()

    def connection_lost(self, exc: Exception | None) -> None:
        detail = str(exc) if exc else "the server closed the connection"
        self._fail(TransportError(f"ConnectionLost: {detail}"))
        self._transport = None
        if not self._ended.done():
            self._ended.set_result(None)

    def _close_transport(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    async def _wait_for_room(self) -> None:
        while True:
            if self._closed is not None:
                raise StreamRefused(f"StreamRefused: {self._closed}")
            if self._going_away:
                raise StreamRefused("StreamRefused: the server is closing the connection")
            # Our own count of streams awaiting an answer: h2's open_outbound_streams walks
            # every stream (200 of them per push at full concurrency).
            if len(self._streams) < self._h2.remote_settings.max_concurrent_streams:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            await waiter

    async def _send_body(self, stream_id: int, body: bytes) -> None:
        view = memoryview(body)
        while view:
            credit = min(
                self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
            )
            if credit <= 0:
                self._schedule_flush()
                waiter = asyncio.get_running_loop().create_future()
                self._window.append(waiter)
                await waiter
                if self._closed is not None:
                    raise self._closed
                continue
            chunk, view = view[:credit], view[credit:]
            self._h2.send_data(stream_id, chunk.tobytes(), end_stream=not view)

    def _abandon(self, stream_id: int) -> None:
        """A stream given up before its answer (timeout, cancellation): reset it."""
        if self._closed is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._schedule_flush()
        _wake(self._room, everyone=False)

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.headers = {str(k): str(v) for k, v in event.headers}
                stream.status = int(stream.headers.get(":status", "0"))
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            kind = StreamRefused if refused else TransportError
            self._reject(event.stream_id, kind(f"StreamReset: error code {event.error_code!s}"))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event)
        elif isinstance(event, h2.events.RemoteSettingsChanged | h2.events.WindowUpdated):
            if not self._settled.done():
                self._settled.set_result(None)
            _wake(self._room, everyone=True)
            _wake(self._window, everyone=True)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self._going_away = True
        last = event.last_stream_id if event.last_stream_id is not None else 0
        detail = (event.additional_data or b"").decode("utf-8", "replace")
        for stream_id in [s for s in self._streams if s > last]:
            self._reject(stream_id, StreamRefused(f"StreamRefused: GOAWAY {detail}".strip()))
        _wake(self._room, everyone=True)

    def _finish(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and not stream.future.done():
            stream.future.set_result(Response(stream.status, stream.headers, bytes(stream.body)))
        _wake(self._room, everyone=False)

    def _reject(self, stream_id: int, error: TransportError) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and not stream.future.done():
            stream.future.set_exception(error)
        _wake(self._room, everyone=False)

    def _fail(self, error: TransportError) -> None:
        if self._closed is None:
            self._closed = error
        if not self._settled.done():
            self._settled.set_result(None)  # open() then reports self._closed
        for stream_id in list(self._streams):
            self._reject(stream_id, error)
        _wake(self._room, everyone=True)
        _wake(self._window, everyone=True)


# A refused stream was never processed (RFC 9113 §8.7), so resending it is free; the cap
# only stops a server that refuses everything. Under heavy load the FIFO hand-over can
# still let newcomers reach a fresh connection first a few times in a row (seen: 3).
REFUSALS_RESENT = 8


class ConnectionPool:
    """A fixed number of connections to one origin, used in turn, reopened when they end."""

    def __init__(
        self,
        url: str,
        context: ssl.SSLContext,
        *,
        connections: int = 1,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"APNs needs an https:// URL, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.authority = self.host if self.port == 443 else f"{self.host}:{self.port}"
        context.set_alpn_protocols(["h2"])
        self._context = context
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._slots: list[Http2Connection | None] = [None] * connections
        self._opening = [asyncio.Lock() for _ in range(connections)]
        self._queued = [0] * connections  # callers waiting on _opening[i] (FIFO)
        self._retired: list[Http2Connection] = []
        self._turn = 0

    async def request(self, path: str, headers: Headers, body: bytes) -> Response:
        """POST ``body`` to ``path``; a stream the server refused is resent on a fresh one."""
        head = [(":method", "POST"), (":scheme", "https"), (":authority", self.authority)]
        head += [(":path", path), *headers]
        for attempt in range(REFUSALS_RESENT + 1):
            connection = await self._connection()
            try:
                return await connection.request(head, body, timeout=self._timeout)
            except StreamRefused:
                if attempt == REFUSALS_RESENT:
                    raise
        raise AssertionError("unreachable")

    async def _connection(self) -> Http2Connection:
        index = self._turn % len(self._slots)
        self._turn += 1
        connection = self._slots[index]
        # No overtaking: while anyone waits for this slot's new connection (among them the
        # streams a GOAWAY refused), newcomers queue behind them. Otherwise newcomers fill the
        # new connection first, the refused land above its GOAWAY in turn, and after three
        # refusals a push is reported as failed though the server never saw it.
        if connection is not None and connection.available and not self._queued[index]:
            return connection
        self._queued[index] += 1
        try:
            async with self._opening[index]:  # asyncio.Lock wakes its waiters in FIFO order
                connection = self._slots[index]
                if connection is None or not connection.available:
                    self._retired = [c for c in self._retired if not c.finished]
                    if connection is not None:
                        self._retired.append(connection)  # its last streams may be answered
                    connection = await Http2Connection.open(
                        self.host, self.port, self._context, timeout=self._connect_timeout
                    )
                    self._slots[index] = connection
                return connection
        finally:
            self._queued[index] -= 1

    async def aclose(self) -> None:
        """Close every connection."""
        for connection in [*self._slots, *self._retired]:
            if connection is not None:
                await connection.aclose()
        self._slots = [None] * len(self._slots)
        self._retired.clear()
