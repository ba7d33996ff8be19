"""The APNs client: Wallet pass pushes (empty payload, topic = pass type id) over HTTP/2,
multiplexed over a few connections, with a concurrency limit, retries and per-push results."""

from __future__ import annotations

import asyncio
import json
import random
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import certifi

from passpost.config import APNS_PRODUCTION_URL, Settings
from passpost.passkit.apns.auth import ApnsAuth, ApnsConfigError
from passpost.passkit.apns.certificate import CertificateAuth
from passpost.passkit.apns.connection import ConnectionPool, Response, TransportError
from passpost.passkit.apns.results import (
    REFRESH_REASONS,
    PushOutcome,
    PushResult,
    classify,
    parse_retry_after,
    parse_timestamp,
)
from passpost.passkit.apns.token import TokenAuth

# Device tokens are hex (32 bytes today, up to 100 by Apple's word); anything else would be
# interpolated into the request path, so it is refused before sending.
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,200}")
# Wallet ignores the payload; Apple's pass update push is an empty JSON dictionary.
_BODY = b"{}"
# Wallet pushes carry no alert, so "background" is the honest push type (APNs may delay or
# drop pushes whose type contradicts the payload), and APNs requires priority 5 with it
# (10 is an error for background pushes). Both are constructor options should Apple change.
DEFAULT_PUSH_TYPE = "background"
DEFAULT_PRIORITY = 5

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class _Answer:
    status: int | None
    reason: str
    apns_id: str | None
    retry_after: float | None = None
    unregistered_at: object = None


def ssl_context(ca_file: Path | str | None = None) -> ssl.SSLContext:
    """Verify APNs against the public roots, plus ``ca_file`` (a local test server's CA)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ApnsConfigError(f"cannot load the APNs CA file {ca_file}: {exc}") from exc
    return context


def token_auth_configured(settings: Settings) -> bool:
    """True when settings name a ``.p8`` key, key id and team id (token mode available)."""
    return bool(settings.apns_key_file and settings.apns_key_id and settings.apns_team_id)


class ApnsClient:
    """Async APNs client; create one per event loop (and per certificate in certificate mode)."""

    def __init__(
        self,
        auth: ApnsAuth,
        *,
        url: str = APNS_PRODUCTION_URL,
        ca_file: Path | str | None = None,
        connections: int = 1,
        concurrency: int = 200,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 30.0,
        push_type: str = DEFAULT_PUSH_TYPE,
        priority: int = DEFAULT_PRIORITY,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if connections < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("connections, concurrency and max_attempts must be at least 1")
        self.auth = auth
        self.url = url.rstrip("/")
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.push_type = push_type
        self.priority = priority
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        context = ssl_context(ca_file)
        auth.configure(context)
        # Many streams per connection; a few connections used in turn (APNs advises a few
        # for throughput rather than one per push).
        self._pool = ConnectionPool(self.url, context, connections=connections, timeout=timeout)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        certificate: CertificateAuth | None = None,
        *,
        connections: int = 1,
        concurrency: int = 200,
    ) -> ApnsClient:
        """A client from ``PASSPOST_APNS_*``: certificate mode if given one, else token mode."""
        auth: ApnsAuth
        if certificate is not None:
            auth = certificate
        elif token_auth_configured(settings):
            assert settings.apns_key_file and settings.apns_key_id and settings.apns_team_id
            auth = TokenAuth.from_file(
                settings.apns_key_file, key_id=settings.apns_key_id, team_id=settings.apns_team_id
            )
        else:
            raise ApnsConfigError(
                "APNs is not configured: set PASSPOST_APNS_KEY_FILE, PASSPOST_APNS_KEY_ID and "
                "PASSPOST_APNS_TEAM_ID, or hold the pass type's signing certificate"
            )
        return cls(
            auth,
            url=settings.apns_url,
            ca_file=settings.apns_ca_file,
            connections=connections,
            concurrency=concurrency,
        )

    async def __aenter__(self) -> ApnsClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        await self._pool.aclose()

    async def push_many(self, items: Iterable[tuple[str, str]]) -> list[PushResult]:
        """Push to every ``(token, topic)``; results in the same order, one per item."""
        targets = list(items)
        results: list[PushResult | None] = [None] * len(targets)
        # Bounds the live tasks (those waiting for a slot or sleeping in backoff included).
        window = asyncio.Semaphore(self.concurrency * 4)

        async def one(index: int, token: str, topic: str) -> None:
            try:
                results[index] = await self.push(token, topic)
            finally:
                window.release()

        async with asyncio.TaskGroup() as group:
            for index, (token, topic) in enumerate(targets):
                await window.acquire()
                group.create_task(one(index, token, topic))
        return [result for result in results if result is not None]

    async def push(self, token: str, topic: str) -> PushResult:
        """Send one Wallet update push, retrying what is worth retrying; never raises for APNs."""
        if not _DEVICE_TOKEN.fullmatch(token):
            return PushResult(token, topic, PushOutcome.PERMANENT, None, "BadDeviceToken", None, 0)
        apns_id = str(uuid.uuid4()).upper()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            async with self._slots:
                authorization = self.auth.authorization()
                answer = await self._send(token, topic, apns_id, authorization)
            outcome = classify(answer.status)
            if answer.status == 403 and answer.reason in REFRESH_REASONS and not refreshed:
                self.auth.refresh(authorization)
                refreshed = True
                continue
            if outcome is PushOutcome.TRANSIENT and attempt < self.max_attempts:
                delay = self._delay(attempt, answer.retry_after)
                if delay is not None:
                    await self._sleep(delay)
                    continue
            return PushResult(
                token=token,
                topic=topic,
                outcome=outcome,
                status=answer.status,
                reason=answer.reason,
                apns_id=answer.apns_id or apns_id,
                attempts=attempt,
                retry_after=answer.retry_after,
                unregistered_at=parse_timestamp(answer.unregistered_at),
            )

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Backoff with jitter, at least Retry-After; None when the pause is the queue's job."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            if retry_after > self.backoff_max:
                return None  # too long to hold a worker: report transient with retry_after
            delay = max(delay, retry_after)
        return delay

    async def _send(
        self, token: str, topic: str, apns_id: str, authorization: str | None
    ) -> _Answer:
        headers = [
            ("apns-topic", topic),
            ("apns-push-type", self.push_type),
            ("apns-priority", str(self.priority)),
            ("apns-id", apns_id),
            ("content-length", str(len(_BODY))),
        ]
        if authorization is not None:
            headers.append(("authorization", authorization))
        try:
            response = await self._pool.request(f"/3/device/{token}", headers, _BODY)
        except TransportError as exc:
            return _Answer(None, str(exc), None)
        reason, timestamp = "", None
        if response.status != 200:
            reason, timestamp = _reason(response)
        return _Answer(
            status=response.status,
            reason=reason,
            apns_id=response.headers.get("apns-id"),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            unregistered_at=timestamp,
        )


def _reason(response: Response) -> tuple[str, object]:
    """APNs' ``{"reason", "timestamp"}`` body, tolerating a body that is not APNs' JSON."""
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("reason"), str):
        return body["reason"], body.get("timestamp")
    return f"HTTP {response.status}", None
