"""Secrets at rest: Fernet (MultiFernet) under the secret key(s), link tokens under AES-GCM.

The key comes from ``PASSPOST_SECRET_KEY`` or ``<DATA_DIR>/secret.key``. Either may hold
several keys (comma- or newline-separated): the first encrypts, every one decrypts. That
is how a key is rotated without downtime (``passpost rotate-key``): the new key goes first,
the old one stays readable until every stored secret has been re-encrypted. The key file
is re-read when it changes (checked at most every ``KEY_RELOAD_SECONDS``), so running
processes follow a rotation without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets as _random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from passpost.config import get_settings

KEY_RELOAD_SECONDS = 1.0


def key_file(data_dir: Path) -> Path:
    """Where the embedded default keeps its secret key(s)."""
    return data_dir / "secret.key"


def parse_keys(text: str | bytes) -> tuple[bytes, ...]:
    """Keys from a file or variable: comma-, space- or newline-separated, first = primary."""
    raw = text.decode() if isinstance(text, bytes) else text
    keys = tuple(k.encode() for k in re.split(r"[\s,]+", raw) if k)
    if not keys:
        raise ValueError("the secret key is empty")
    return keys


@dataclass
class _FileKeys:
    stamp: tuple[int, int, int]
    keys: tuple[bytes, ...]
    checked: float


_file_keys: dict[Path, _FileKeys] = {}
_file_lock = threading.Lock()


def write_key_file(path: Path, keys: tuple[bytes, ...]) -> None:
    """Replace the key file atomically (readers see the old keys or the new, never half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\n".join(keys) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _file_keys.pop(path, None)  # this process sees its own change at once


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once agree on whichever key was written first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")


def _keys_from_file(path: Path) -> tuple[bytes, ...]:
    now = time.monotonic()
    cached = _file_keys.get(path)
    if cached is not None and now - cached.checked < KEY_RELOAD_SECONDS:
        return cached.keys
    with _file_lock:
        if not path.exists():
            _create_key_file(path)
        stat = path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = _file_keys.get(path)
        if cached is None or cached.stamp != stamp:
            cached = _FileKeys(stamp, parse_keys(path.read_bytes()), now)
        cached.checked = now
        _file_keys[path] = cached
        return cached.keys


@lru_cache(maxsize=8)
def _resolved_key_file(data_dir: Path, cwd: str) -> Path:
    # Resolving walks every path component (~0.1 ms): done once per data directory (and
    # working directory, which a relative one depends on), not once per sealed link token.
    return key_file((Path(cwd) / data_dir).resolve())


@lru_cache(maxsize=8)
def _parsed_keys(text: str) -> tuple[bytes, ...]:
    return parse_keys(text)


def secret_keys() -> tuple[bytes, ...]:
    """The configured keys, primary first."""
    settings = get_settings()
    if settings.secret_key:
        return _parsed_keys(settings.secret_key)
    data_dir = settings.data_dir
    cwd = "" if data_dir.is_absolute() else os.getcwd()
    return _keys_from_file(_resolved_key_file(data_dir, cwd))


def secret_key() -> bytes:
    """The primary key (the one that encrypts)."""
    return secret_keys()[0]


@lru_cache(maxsize=8)
def _multi(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


@lru_cache(maxsize=8)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def cipher() -> MultiFernet:
    """The process's cipher for secrets at rest (encrypts with the primary key)."""
    return _multi(secret_keys())


def encrypt(plaintext: str | bytes) -> str:
    """Encrypt a secret for storage."""
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return cipher().encrypt(data).decode("ascii")


def decrypt(token: str) -> bytes:
    """Decrypt a stored secret (raises ``ValueError`` if no configured key fits)."""
    try:
        return cipher().decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured key") from exc


def reencrypt(token: str) -> str | None:
    """The secret encrypted under the primary key; None when it already is."""
    keys = secret_keys()
    try:
        _fernet(keys[0]).decrypt(token.encode("ascii"))
        return None
    except InvalidToken:
        return encrypt(decrypt(token))


@lru_cache(maxsize=8)
def _link_cipher(key: bytes) -> AESGCM:
    # A subkey of each secrets key: link tokens are sealed by the hundred thousand per
    # request, and AES-GCM is ~50x cheaper per token than Fernet's AES-CBC + HMAC.
    return AESGCM(hashlib.sha256(b"passpost link tokens\0" + key).digest())


def seal_link_token(token: str) -> str:
    """Encrypt a download-link token for storage (nonce + ciphertext, URL-safe base64)."""
    return seal_link_tokens([token])[0]


def seal_link_tokens(tokens: Sequence[str]) -> list[str]:
    """``seal_link_token`` of each token: the key looked up and the random nonces read
    once for all of them (a large list's chunk seals a hundred)."""
    cipher = _link_cipher(secret_keys()[0])
    nonces = os.urandom(_NONCE * len(tokens))
    sealed = []
    for n, token in enumerate(tokens):
        nonce = nonces[n * _NONCE : (n + 1) * _NONCE]
        raw = nonce + cipher.encrypt(nonce, token.encode(), None)
        sealed.append(base64.urlsafe_b64encode(raw).decode("ascii"))
    return sealed


_NONCE = 12  # AES-GCM's standard nonce: random, never reused under a key (2^-32 at 2^32)


def _open_with(key: bytes, raw: bytes) -> str | None:
    try:
        return _link_cipher(key).decrypt(raw[:_NONCE], raw[_NONCE:], None).decode()
    except InvalidTag:
        return None


def open_link_token(stored: str) -> str:
    """Decrypt a stored download-link token with whichever configured key sealed it.

    A sealed token carries no key id: the keys are tried in order (a wrong key fails its
    GCM tag check), so links keep working while ``rotate-key`` re-seals them.
    """
    raw = base64.urlsafe_b64decode(stored)
    for key in secret_keys():
        token = _open_with(key, raw)
        if token is not None:
            return token
    raise ValueError("stored link token cannot be decrypted with the configured key")


def reseal_link_token(stored: str) -> str | None:
    """The link token sealed under the primary key; None when it already is."""
    raw = base64.urlsafe_b64decode(stored)
    if _open_with(secret_keys()[0], raw) is not None:
        return None
    return seal_link_token(open_link_token(stored))


def new_token(nbytes: int = 24) -> str:
    """A random URL-safe token (``nbytes`` of entropy; 24 bytes = 192 bits)."""
    return _random.token_urlsafe(nbytes)


def new_tokens(count: int, nbytes: int = 24) -> list[str]:
    """``count`` tokens as ``new_token`` makes them, from one read of the system's random
    source (``secrets.token_urlsafe`` reads it once per token)."""
    raw = os.urandom(nbytes * count)
    return [
        base64.urlsafe_b64encode(raw[n * nbytes : (n + 1) * nbytes]).rstrip(b"=").decode("ascii")
        for n in range(count)
    ]


def token_hash(token: str) -> str:
    """The SHA-256 hex of a token: what is stored instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()
