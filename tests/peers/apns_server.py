"""A real APNs-like HTTP/2 TLS server on loopback, for tests and the P4 benchmark.

Built on ``h2`` and asyncio directly so that it can count connections and concurrent streams,
require a client certificate (certificate mode) or verify the provider JWT (token mode), and
answer each device token with a programmed sequence of statuses, in APNs' wire format
(``apns-id`` header, ``{"reason": ...}`` bodies, ``timestamp`` on 410).

Run alone (for the benchmark): ``python tests/peers/apns_server.py PKI_DIR [--mode token]``;
it writes the test PKI into PKI_DIR and prints the port on its first stdout line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Mode = Literal["token", "certificate"]

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "pass.org.passpost.test"


@dataclass(frozen=True)
class ApnsPki:
    """Files of a throwaway PKI: CA, server cert for 127.0.0.1, pass client cert, .p8 key."""

    directory: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # a "Pass Type ID" certificate: UID = TOPIC, OU = TEAM_ID
    client_key: Path
    p8_key: Path  # APNs auth key (EC P-256, PKCS#8 PEM), id KEY_ID
    team_id: str = TEAM_ID
    key_id: str = KEY_ID
    topic: str = TOPIC

    def token_env(self, url: str) -> dict[str, str]:
        """passpost's settings for the APNs server at ``url`` in token mode (the .p8 key)."""
        return {
            "PASSPOST_APNS_URL": url,
            "PASSPOST_APNS_CA_FILE": str(self.ca_file),
            "PASSPOST_APNS_KEY_FILE": str(self.p8_key),
            "PASSPOST_APNS_KEY_ID": self.key_id,
            "PASSPOST_APNS_TEAM_ID": self.team_id,
        }

    def p8_public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half of the .p8 key (what Apple holds to verify provider JWTs)."""
        key = serialization.load_pem_private_key(self.p8_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.public_key()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extensions: Iterable[x509.ExtensionType] = (),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_test_pki(directory: Path) -> ApnsPki:
    """Create a CA, a server certificate, a pass-type client certificate and a .p8 key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "passpost test CA")])
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server = _issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        server_key,
        ca_name,
        ca_key,
        ca=False,
        extensions=[san],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, TOPIC),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {TOPIC}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "passpost tests"),
        ]
    )
    client = _issue(client_name, client_key, ca_name, ca_key, ca=False)
    p8 = ec.generate_private_key(ec.SECP256R1())
    pki = ApnsPki(
        directory=directory,
        ca_file=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        p8_key=directory / f"AuthKey_{KEY_ID}.p8",
    )
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(_pem_key(server_key))
    pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    pki.client_key.write_bytes(_pem_key(client_key))
    pki.p8_key.write_bytes(_pem_key(p8))
    return pki


@dataclass(frozen=True)
class Answer:
    """One programmed reply: status, APNs reason, optional Retry-After header.

    ``action`` "hang" never answers the stream (client timeouts); "drop" aborts the whole
    connection instead of answering (connection loss mid-request).
    """

    status: int = 200
    reason: str = ""
    retry_after: str | None = None
    action: Literal["answer", "hang", "drop"] = "answer"


@dataclass(frozen=True)
class ReceivedPush:
    """What the server saw for one request."""

    connection: int
    stream_id: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_subject: str | None
    status: int  # what the server answered
    reason: str


@dataclass
class _Stream:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class ApnsTestServer:
    """The server; ``start()`` runs it on its own event loop in a thread, ``stop()`` ends it."""

    def __init__(
        self,
        pki: ApnsPki,
        *,
        mode: Mode = "token",
        max_concurrent_streams: int = 1000,
        record: bool = True,
        client_ca_file: Path | None = None,
        goaway_after: int | None = None,
    ) -> None:
        self.pki = pki
        self.mode = mode
        # Certificate mode trusts client certificates from pki.ca_file and this CA (e.g. the
        # pass-signing test CA of tests/support/passes.py).
        self.client_ca_file = client_ca_file
        # After this many requests on a connection: GOAWAY (later streams refused), then close.
        self.goaway_after = goaway_after
        self.max_concurrent_streams = max_concurrent_streams
        self.record = record  # the benchmark turns recording off to stay lean
        self.port = 0
        self.received: list[ReceivedPush] = []
        self.connections = 0
        self.max_in_flight = 0  # most streams awaiting an answer at once, over all connections
        self.in_flight = 0
        self.answered = 0
        self._answers: dict[str, deque[Answer]] = {}
        self._verified: dict[str, float] = {}  # provider JWT -> its iat
        self._lock = threading.Lock()
        self._public_key = pki.p8_public_key()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        """The base URL a client uses (the certificate is valid for 127.0.0.1)."""
        return f"https://127.0.0.1:{self.port}"

    def program(self, device_token: str, *answers: Answer) -> None:
        """Answer the next requests for ``device_token`` with ``answers``, then 200."""
        with self._lock:
            self._answers.setdefault(device_token, deque()).extend(answers)

    def _next_answer(self, device_token: str) -> Answer:
        with self._lock:
            queue = self._answers.get(device_token)
            return queue.popleft() if queue else Answer()

    def ssl_context(self) -> ssl.SSLContext:
        """TLS for the server: h2 only; a client certificate from the test CA in cert mode."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        context.set_alpn_protocols(["h2"])
        if self.mode == "certificate":
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.pki.ca_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(cafile=self.client_ca_file)
        return context

    async def serve(self, port: int = 0) -> asyncio.Server:
        """Listen on 127.0.0.1 on the current loop (used by ``start`` and the CLI)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, ssl=self.ssl_context()
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def start(self) -> ApnsTestServer:
        """Run the server in a background thread; return once it listens."""

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(self.serve())
            self._ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="apns-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("APNs test server did not start")
        return self

    def stop(self) -> None:
        """Stop the loop and wait for the thread."""
        if self._loop is not None and self._thread is not None:
            if self._server is not None:
                self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ApnsTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def judge(self, headers: dict[str, str], client_subject: str | None) -> Answer | None:
        """APNs' own checks before the programmed answer: auth and topic; None when fine."""
        if headers.get(":method") != "POST" or not headers.get(":path", "").startswith(
            "/3/device/"
        ):
            return Answer(405 if headers.get(":method") != "POST" else 404, "MethodNotAllowed")
        topic = headers.get("apns-topic")
        if self.mode == "certificate":
            if client_subject is None or f"UID={topic}" not in client_subject.split(","):
                return Answer(400, "TopicDisallowed")
            return None
        return self._judge_token(headers.get("authorization"))

    def _judge_token(self, authorization: str | None) -> Answer | None:
        if not authorization or not authorization.startswith("bearer "):
            return Answer(403, "MissingProviderToken")
        token = authorization.removeprefix("bearer ")
        issued_at = self._verified.get(token)
        if issued_at is None:
            # Like APNs, verify a provider token once and remember it; its age is checked
            # on every request.
            issued_at = self._verify(token)
            if issued_at is None:
                return Answer(403, "InvalidProviderToken")
            with self._lock:
                self._verified[token] = issued_at
        if time.time() - issued_at > 3600:
            return Answer(403, "ExpiredProviderToken")
        return None

    def _verify(self, token: str) -> float | None:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["ES256"],
                options={"verify_iat": False, "require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return None
        if header.get("kid") != self.pki.key_id or claims.get("iss") != self.pki.team_id:
            return None
        return float(claims["iat"])


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: h2 state machine, answers sent on the next loop turn."""

    def __init__(self, server: ApnsTestServer) -> None:
        self.server = server
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.streams: dict[int, _Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.subject: str | None = None
        self.number = 0
        self.ready: list[int] = []  # streams fully received, answered on the next loop turn
        self.requests = 0
        self.last_stream: int | None = None  # set once GOAWAY was sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        with self.server._lock:
            self.server.connections += 1
            self.number = self.server.connections
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if peer:
            self.subject = x509.load_der_x509_certificate(peer).subject.rfc4514_string()
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_concurrent_streams
            },
        )
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = _Stream(dict(event.headers))  # type: ignore[arg-type]
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id].body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if self.last_stream is not None and event.stream_id > self.last_stream:
                    continue  # refused by the GOAWAY: never processed
                self._received(event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.conn.data_to_send())

    def _received(self, stream_id: int) -> None:
        server = self.server
        with server._lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        self.requests += 1
        if server.goaway_after is not None and self.requests == server.goaway_after:
            # h2 cannot answer after sending GOAWAY, so it goes out once these are answered;
            # streams above this one are ignored meanwhile, as a GOAWAY'd server would.
            self.last_stream = stream_id
        # Answer on the next loop turn, all together: streams that arrived together are in
        # flight together, and their answers leave in one write.
        if not self.ready:
            asyncio.get_running_loop().call_soon(self._answer_ready)
        self.ready.append(stream_id)

    def _answer_ready(self) -> None:
        ready, self.ready = self.ready, []
        for stream_id in ready:
            if self.transport is None:
                return
            self._answer(stream_id)
        if self.transport is not None:
            self.transport.write(self.conn.data_to_send())
            if self.last_stream is not None and not self.ready:
                self.conn.close_connection(last_stream_id=self.last_stream)
                self.transport.write(self.conn.data_to_send())
                # Like APNs, leave the client time to read the GOAWAY and hang up itself.
                asyncio.get_running_loop().call_later(2.0, self.transport.close)

    def _answer(self, stream_id: int) -> None:
        server = self.server
        stream = self.streams.pop(stream_id)
        headers = stream.headers
        token = headers.get(":path", "").removeprefix("/3/device/")
        answer = server.judge(headers, self.subject) or server._next_answer(token)
        if answer.action != "answer":
            with server._lock:
                server.in_flight -= 1
                server.received.append(self._record(stream_id, stream, 0, answer.action))
            if answer.action == "drop" and self.transport is not None:
                self.transport.abort()
                self.transport = None
            return
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        response = [(":status", str(answer.status)), ("apns-id", apns_id)]
        body = b""
        if answer.status != 200:
            payload: dict[str, Any] = {"reason": answer.reason}
            if answer.status == 410:
                payload["timestamp"] = int(time.time() * 1000)
            body = json.dumps(payload).encode()
            response += [("content-type", "application/json"), ("content-length", str(len(body)))]
        if answer.retry_after is not None:
            response.append(("retry-after", answer.retry_after))
        with server._lock:
            server.in_flight -= 1
            server.answered += 1
            if server.record:
                server.received.append(
                    self._record(stream_id, stream, answer.status, answer.reason)
                )
        try:
            self.conn.send_headers(stream_id, response, end_stream=not body)
            if body:
                self.conn.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.StreamClosedError:
            return  # the client reset the stream (e.g. it timed out); nothing to answer

    def _record(self, stream_id: int, stream: _Stream, status: int, reason: str) -> ReceivedPush:
        return ReceivedPush(
            connection=self.number,
            stream_id=stream_id,
            method=stream.headers.get(":method", ""),
            path=stream.headers.get(":path", ""),
            headers=stream.headers,
            body=bytes(stream.body),
            client_subject=self.subject,
            status=status,  # 0: not answered ("hang" or "drop")
            reason=reason,
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def main() -> None:
    """Serve until killed; print the port first (for bench/passkit_push.py)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("pki_dir", type=Path)
    parser.add_argument("--mode", choices=["token", "certificate"], default="token")
    args = parser.parse_args()
    pki = make_test_pki(args.pki_dir)
    server = ApnsTestServer(pki, mode=args.mode, record=False)

    async def run() -> None:
        listener = await server.serve()
        print(server.port, flush=True)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
