"""Rotating the secret key: re-encrypt every stored secret under a new key, without downtime.

Stored secrets: SMTP/SMS passwords (``channel_config.secrets``), signing keys and their
passphrases (``pass_certificate``), all Fernet; download-link tokens
(``pass_holder.link_token_enc``), AES-GCM under a subkey of the same key. While both keys
are configured (new first) every process reads both and writes with the new one; each row
is re-encrypted in small write transactions, only if nobody changed it meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from passpost import secrets
from passpost.certs.models import PassCertificate
from passpost.channels.models import ChannelConfig
from passpost.config import Settings
from passpost.db import session_scope
from passpost.distribution.models import PassHolder

BATCH = 1000
# Long enough for every process sharing the key file to have re-read it.
SETTLE_SECONDS = 3 * secrets.KEY_RELOAD_SECONDS


@dataclass(frozen=True)
class SecretColumn:
    """A column holding secrets, and how to re-encrypt / check one value."""

    name: str
    column: Any  # the mapped attribute, e.g. ``PassHolder.link_token_enc``
    reencrypt: Callable[[str], str | None]
    read: Callable[[str], object]


STORED_SECRETS = (
    SecretColumn(
        "channel_config.secrets", ChannelConfig.secrets, secrets.reencrypt, secrets.decrypt
    ),
    SecretColumn(
        "pass_certificate.private_key_enc",
        PassCertificate.private_key_enc,
        secrets.reencrypt,
        secrets.decrypt,
    ),
    SecretColumn(
        "pass_certificate.passphrase_enc",
        PassCertificate.passphrase_enc,
        secrets.reencrypt,
        secrets.decrypt,
    ),
    SecretColumn(
        "pass_holder.link_token_enc",
        PassHolder.link_token_enc,
        secrets.reseal_link_token,
        secrets.open_link_token,
    ),
)


@dataclass
class Survey:
    """Per column: values under the primary key, under an older key, and unreadable."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, kind: str) -> int:
        return sum(c[kind] for c in self.counts.values())


def _rows(session: Session, column: Any, after: int) -> list[tuple[int, str]]:
    table = column.table
    query = (
        select(table.c.id, column)
        .where(table.c.id > after, column.is_not(None))
        .order_by(table.c.id)
        .limit(BATCH)
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def reencrypt_column(url: str, secret: SecretColumn) -> int:
    """Re-encrypt one column under the primary key, batch by batch; rows changed."""
    changed, after = 0, 0
    while True:
        with session_scope(url, write=True) as session:
            rows = _rows(session, secret.column, after)
            for row_id, value in rows:
                new = secret.reencrypt(value)
                if new is None:
                    continue
                table = secret.column.table
                # Only if unchanged since read: a concurrent update wins (it used the new key).
                result = session.execute(
                    update(table)
                    .where(table.c.id == row_id, secret.column == value)
                    .values({secret.column.key: new})
                )
                changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        if len(rows) < BATCH:
            return changed
        after = rows[-1][0]


def survey(url: str) -> Survey:
    """Count, per column, the secrets under the primary key, an older key, or none."""
    result = Survey()
    for secret in STORED_SECRETS:
        counts = {"primary": 0, "older": 0, "unreadable": 0}
        after = 0
        while True:
            with session_scope(url) as session:
                rows = _rows(session, secret.column, after)
            for _, value in rows:
                counts[_classify(secret, value)] += 1
            if len(rows) < BATCH:
                break
            after = rows[-1][0]
        result.counts[secret.name] = counts
    return result


def _classify(secret: SecretColumn, value: str) -> str:
    try:
        secret.read(value)
    except (ValueError, TypeError):
        return "unreadable"
    return "older" if secret.reencrypt(value) is not None else "primary"


def wait_for_older_writers(url: str, since: datetime, timeout: float = 600) -> None:
    """Wait until no transaction begun before ``since`` is still open (it may have sealed
    with the old key and not committed yet)."""
    if url.startswith("sqlite"):
        # Writers take SQLite's one write lock at BEGIN: getting it means they are done.
        with session_scope(url, write=True):
            return
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start < :since"
    )
    while time.monotonic() < deadline:
        with session_scope(url) as session:
            if not session.scalar(query, {"since": since}):
                return
        time.sleep(0.5)
    raise TimeoutError("transactions begun before the key change are still open")


def reencrypt_all(url: str) -> dict[str, int]:
    """Re-encrypt every stored secret under the primary key; rows changed per column."""
    return {secret.name: reencrypt_column(url, secret) for secret in STORED_SECRETS}


class RotationError(Exception):
    """The rotation cannot proceed (the message says why and what to do)."""


@dataclass(frozen=True)
class Rotation:
    changed: dict[str, int]
    survey: Survey
    dropped_keys: int


def rotate(settings: Settings, *, settle: float = SETTLE_SECONDS) -> Rotation:
    """Rotate to a new key (key file) or onto the first configured key (PASSPOST_SECRET_KEY)."""
    url = settings.resolved_database_url
    if settings.secret_key:
        return _rotate_configured(url, settings)
    path = secrets.key_file(settings.data_dir.resolve())
    old = secrets.secret_keys()
    secrets.write_key_file(path, (Fernet.generate_key(), *old))
    time.sleep(settle)  # every process now encrypts with the new key, reads both
    changed = _reencrypt_after(url, since=datetime.now(UTC))
    final = survey(url)
    if final.total("older") or final.total("unreadable"):
        raise RotationError(
            "some secrets are still under the old key; both keys stay in the key file"
        )
    secrets.write_key_file(path, secrets.secret_keys()[:1])
    return Rotation(changed, final, len(old))


def _rotate_configured(url: str, settings: Settings) -> Rotation:
    keys = secrets.secret_keys()
    if len(keys) < 2:
        raise RotationError(
            "PASSPOST_SECRET_KEY holds one key. Give every process NEW,OLD (the new key "
            "first), restart them one by one, then run rotate-key again."
        )
    changed = _reencrypt_after(url, since=datetime.now(UTC))
    return Rotation(changed, survey(url), 0)


def _reencrypt_after(url: str, *, since: datetime) -> dict[str, int]:
    wait_for_older_writers(url, since)
    return reencrypt_all(url)
