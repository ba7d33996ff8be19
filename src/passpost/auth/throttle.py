"""Credential-failure throttling: per username and per client address, for every login path.

Each failed password (HTTP Basic, the login call, the console's login form) counts against
the username and against the address it came from; each refused refresh token against the
address. Once either has used up its allowance (``PASSPOST_AUTH_FAILURES_PER_USERNAME``,
``PASSPOST_AUTH_FAILURES_PER_ADDRESS``, moving windows), further tries are refused with 429
and ``Retry-After`` *before* any password is hashed, so guessing costs the guesser time
and passpost no CPU. A success clears the username's failures. Counts live in this
process's memory (the ``limits`` library): with N API processes a guesser gets N times
the allowance.

Usage from any login path::

    throttle.check(username=name, address=addr)      # 429 while locked
    ... verify the password ...
    throttle.failed(username=name, address=addr)     # or throttle.succeeded(...)
"""

from __future__ import annotations

import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from passpost.config import get_settings
from passpost.errors import TooManyRequests

_USERNAME = "username"
_ADDRESS = "address"


class CredentialThrottle:
    """Failure counts per username and per address, with the limits they may reach."""

    def __init__(self, per_username: str, per_address: str) -> None:
        self._limits: dict[str, RateLimitItem | None] = {
            _USERNAME: None if per_username == "off" else parse(per_username),
            _ADDRESS: None if per_address == "off" else parse(per_address),
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _keys(self, username: str | None, address: str | None) -> list[tuple[str, str]]:
        keys = [(_USERNAME, username.casefold())] if username else []
        return keys + ([(_ADDRESS, address)] if address else [])

    def check(self, *, username: str | None, address: str | None) -> None:
        """``TooManyRequests`` when the username or the address has no tries left."""
        for kind, key in self._keys(username, address):
            item = self._limits[kind]
            if item is not None and not self._limiter.test(item, kind, key):
                reset = self._limiter.get_window_stats(item, kind, key).reset_time
                raise TooManyRequests(
                    f"Too many failed sign-ins for this {kind}; try again later.",
                    retry_after=int(reset - time.time()) + 1,
                    error_code="TOO_MANY_FAILED_LOGINS",
                )

    def failed(self, *, username: str | None, address: str | None) -> None:
        """Count one failure against the username and the address."""
        for kind, key in self._keys(username, address):
            item = self._limits[kind]
            if item is not None:
                self._limiter.hit(item, kind, key)

    def succeeded(self, *, username: str | None, address: str | None) -> None:
        """A correct password: the username's earlier failures are forgiven."""
        item = self._limits[_USERNAME]
        if username and item is not None:
            self._limiter.clear(item, _USERNAME, username.casefold())


@lru_cache(maxsize=4)
def _throttle(per_username: str, per_address: str) -> CredentialThrottle:
    return CredentialThrottle(per_username, per_address)


def current() -> CredentialThrottle:
    """The process's throttle for the configured limits."""
    settings = get_settings()
    return _throttle(settings.auth_failures_per_username, settings.auth_failures_per_address)


def check(*, username: str | None, address: str | None) -> None:
    """Raise 429 ``TOO_MANY_FAILED_LOGINS`` (with ``retry_after``) while locked."""
    current().check(username=username, address=address)


def failed(*, username: str | None, address: str | None) -> None:
    """Record a failed password (or refresh token) for the username and address."""
    current().failed(username=username, address=address)


def succeeded(*, username: str | None, address: str | None) -> None:
    """Record a successful sign-in."""
    current().succeeded(username=username, address=address)


def reset() -> None:
    """Forget every count (tests)."""
    _throttle.cache_clear()
