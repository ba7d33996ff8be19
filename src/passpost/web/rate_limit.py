"""Requests per client address on the anonymous endpoints: 429 with ``Retry-After``.

Wallet's web service calls, device logs, download links and the SMS receipt webhooks
answer anyone; each group has its own allowance per client address
(``PASSPOST_RATE_LIMIT_*``, sliding windows from the ``limits`` library). Counts are kept
in this process's memory: behind a load balancer over N API processes an address gets up
to N times the allowance. The address is the peer's, or the one a trusted proxy names in
``X-Forwarded-For`` (``PASSPOST_TRUSTED_PROXIES``; uvicorn rewrites it before this runs).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from passpost.config import Settings, get_settings
from passpost.errors import error_body


@dataclass(frozen=True)
class RateGroup:
    """Paths matching ``pattern`` share the allowance named by the setting ``setting``."""

    name: str
    pattern: re.Pattern[str]
    setting: str


GROUPS: tuple[RateGroup, ...] = (
    RateGroup("device-log", re.compile(r"^/api/v1/log/?$"), "rate_limit_device_log"),
    RateGroup("passkit", re.compile(r"^/api/v1/(devices|passes)/"), "rate_limit_passkit"),
    RateGroup("links", re.compile(r"^/p/"), "rate_limit_links"),
    RateGroup("receipts", re.compile(r"^/api/v1/sms/receipts/"), "rate_limit_receipts"),
)


def group_of(path: str) -> RateGroup | None:
    """The anonymous group ``path`` belongs to, if any."""
    return next((group for group in GROUPS if group.pattern.match(path)), None)


@lru_cache(maxsize=32)
def _item(rate: str) -> RateLimitItem | None:
    return None if rate == "off" else parse(rate)


def _limit(group: RateGroup, settings: Settings) -> RateLimitItem | None:
    return _item(str(getattr(settings, group.setting)))


# Expired counters are ignored when read; sweeping only frees the memory of quiet addresses.
SWEEP_SECONDS = 10.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage with its expired keys swept inline now and then.

    ``MemoryStorage`` starts a ``threading.Timer`` whenever its previous one has finished
    (every 10 ms under load), and ``Thread.start()`` waits, on the event loop, until the new
    thread runs: a quarter of a polled PassKit call's CPU here, more on a loaded machine.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one its constructor started
        self.timer.join()
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer (name-mangled)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimits:
    """One application's counters; every path that answers anonymous calls shares them."""

    def __init__(self) -> None:
        # One store per application: counts start afresh with each app (and each test).
        self._limiter = SlidingWindowCounterRateLimiter(SweptMemoryStorage())

    def refusal(self, scope: Scope, group: RateGroup | None = None) -> JSONResponse | None:
        """The 429 for this request if its address used up its group's allowance, else None.

        ``group``: the one ``group_of(scope["path"])`` names, when the caller knows it.
        """
        group = group or group_of(scope["path"])
        if group is None:
            return None
        item = _limit(group, get_settings())
        address = scope["client"][0] if scope.get("client") else "unknown"
        if item is None or self._limiter.hit(item, group.name, address):
            return None
        reset = self._limiter.get_window_stats(item, group.name, address).reset_time
        retry_after = max(1, int(reset - time.time()) + 1)
        return JSONResponse(
            error_body("Too many requests from this address; try again later.", "RATE_LIMITED"),
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )


class RateLimitMiddleware:
    """429 ``RATE_LIMITED`` with ``Retry-After`` once an address used up its group's rate."""

    def __init__(self, app: ASGIApp, limits: RateLimits | None = None) -> None:
        self.app = app
        self.limits = limits or RateLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.limits.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
