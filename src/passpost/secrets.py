"""Secrets at rest: Fernet with a key from ``PASSPOST_SECRET_KEY`` or ``<DATA_DIR>/secret.key``."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as _random
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from passpost.config import get_settings


def _key_file(data_dir: Path) -> Path:
    return data_dir / "secret.key"


@lru_cache(maxsize=4)
def _load_or_create_key(data_dir: Path) -> bytes:
    path = _key_file(data_dir)
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    data_dir.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once agree on whichever key was written first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


@lru_cache(maxsize=4)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def cipher() -> Fernet:
    """The process's cipher for secrets at rest."""
    return _fernet(secret_key())


def encrypt(plaintext: str | bytes) -> str:
    """Encrypt a secret for storage."""
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return cipher().encrypt(data).decode("ascii")


def decrypt(token: str) -> bytes:
    """Decrypt a stored secret (raises ``ValueError`` if the key does not fit)."""
    try:
        return cipher().decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured key") from exc


@lru_cache(maxsize=4)
def _link_cipher(key: bytes) -> AESGCM:
    # A subkey of the secrets key: link tokens are sealed by the hundred thousand per
    # request, and AES-GCM is ~50x cheaper per token than Fernet's AES-CBC + HMAC.
    return AESGCM(hashlib.sha256(b"passpost link tokens\0" + key).digest())


def secret_key() -> bytes:
    """The key for secrets at rest: ``PASSPOST_SECRET_KEY``, else ``<DATA_DIR>/secret.key``."""
    settings = get_settings()
    if settings.secret_key:
        return settings.secret_key.encode()
    return _load_or_create_key(settings.data_dir)


def seal_link_token(token: str) -> str:
    """Encrypt a download-link token for storage (nonce + ciphertext, URL-safe base64)."""
    nonce = os.urandom(12)
    sealed = _link_cipher(secret_key()).encrypt(nonce, token.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def open_link_token(stored: str) -> str:
    """Decrypt a stored download-link token (raises ``ValueError`` if the key does not fit)."""
    raw = base64.urlsafe_b64decode(stored)
    try:
        return _link_cipher(secret_key()).decrypt(raw[:12], raw[12:], None).decode()
    except InvalidTag as exc:
        raise ValueError("stored link token cannot be decrypted with the configured key") from exc


def new_token(nbytes: int = 24) -> str:
    """A random URL-safe token (``nbytes`` of entropy; 24 bytes = 192 bits)."""
    return _random.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """The SHA-256 hex of a token: what is stored instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()
