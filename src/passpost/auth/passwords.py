"""Password hashing (argon2id) and a short-lived cache of successful verifications.

argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
costs ~150 ms of CPU and 64 MiB per check. HTTP Basic sends the password on every request,
so a successful check is remembered in-process for ``VERIFIED_TTL`` seconds, keyed by an
HMAC (process-random key) over the operator id, the *stored hash* and the password: a
password change or a deleted operator misses the cache at once, because the stored hash is
read from the database on every request anyway. Failures are never cached.

Every argon2 computation runs in this module's own pool of ``ARGON2_SLOTS`` threads
(memory bound: 64 MiB each). The async functions await that pool, so a flood of password
checks queues there and never holds the threads the rest of the service runs on;
concurrent requests with the same credentials wait for the first check instead of
repeating it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

VERIFIED_TTL = 60.0
VERIFIED_MAX = 4096
ARGON2_SLOTS = 4

_hasher = PasswordHasher()  # argon2id
_pool = ThreadPoolExecutor(max_workers=ARGON2_SLOTS, thread_name_prefix="passpost-argon2")
_stripes = [threading.Lock() for _ in range(64)]
_dummy_hash: str | None = None


class _VerifiedCache:
    """Keys of recently verified credentials with their expiry (LRU-bounded)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, operator_id: int, stored_hash: str, password: str) -> bytes:
        message = f"{operator_id}\0{stored_hash}\0{password}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, key: bytes) -> bool:
        now = time.monotonic()
        with self._lock:
            expiry = self._entries.get(key)
            if expiry is None:
                return False
            if expiry < now:
                del self._entries[key]
                return False
            return True

    def add(self, key: bytes) -> None:
        with self._lock:
            self._entries[key] = time.monotonic() + VERIFIED_TTL
            self._entries.move_to_end(key)
            while len(self._entries) > VERIFIED_MAX:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_verified = _VerifiedCache()


def hash_password(password: str) -> str:
    """The argon2id PHC string for ``password`` (computed in the argon2 pool)."""
    return _pool.submit(_hasher.hash, password).result()


async def hash_password_async(password: str) -> str:
    """``hash_password`` without holding the caller's thread."""
    return await asyncio.wrap_future(_pool.submit(_hasher.hash, password))


def needs_rehash(stored_hash: str) -> bool:
    """True when ``stored_hash`` was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(stored_hash)


def _argon2_verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _verify_once(key: bytes, stored_hash: str, password: str) -> bool:
    # Runs in the pool. One check per credentials at a time: a burst of identical Basic
    # requests costs one.
    with _stripes[key[0] % len(_stripes)]:
        if _verified.hit(key):
            return True
        ok = _argon2_verify(stored_hash, password)
        if ok:
            _verified.add(key)
        return ok


def verify_password(operator_id: int, stored_hash: str, password: str) -> bool:
    """Check ``password`` against ``stored_hash``, answering from the cache when it can."""
    key = _verified.key(operator_id, stored_hash, password)
    if _verified.hit(key):
        return True
    return _pool.submit(_verify_once, key, stored_hash, password).result()


async def verify_password_async(operator_id: int, stored_hash: str, password: str) -> bool:
    """``verify_password`` awaiting the argon2 pool instead of blocking a thread."""
    key = _verified.key(operator_id, stored_hash, password)
    if _verified.hit(key):
        return True
    return await asyncio.wrap_future(_pool.submit(_verify_once, key, stored_hash, password))


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def _burn(password: str) -> None:
    _argon2_verify(_dummy(), password)


def burn_verification(password: str) -> None:
    """Spend the time of a real check (unknown user), so timing does not reveal usernames."""
    _pool.submit(_burn, password).result()


async def burn_verification_async(password: str) -> None:
    """``burn_verification`` awaiting the argon2 pool."""
    await asyncio.wrap_future(_pool.submit(_burn, password))


def clear_cache() -> None:
    """Forget every cached verification (tests, benchmarks)."""
    _verified.clear()
