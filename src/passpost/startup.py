"""What ``serve``, ``api`` and ``worker`` check and fix before they start (SPEC §15).

Bad configuration stops the process at once with one line naming the variable (exit
status 2), instead of surfacing later inside a worker as deliveries stuck ``queued``. The
data directory and the files in it are made private to the service's user, on new and
on existing installs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import inspect, text

from passpost.config import Settings, get_settings

EXIT_CONFIGURATION = 2
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SHARE_THE_KEY = (
    "the secret key cannot decrypt the secrets stored in the database: every passpost "
    "process (serve, api and worker, on every machine) must use the same "
    "PASSPOST_SECRET_KEY; set it to the key the first process used (its "
    "<DATA_DIR>/secret.key, unless PASSPOST_SECRET_KEY was set there)"
)
# Encrypted columns, one sample each is enough to know whether the key fits.
_SEALED = (
    ("channel_config", "secrets", "fernet"),
    ("pass_certificate", "private_key_enc", "fernet"),
    ("pass_holder", "link_token_enc", "link"),
)


class ConfigurationError(Exception):
    """A setting passpost cannot start with; ``variable`` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


def read_settings() -> Settings:
    """The settings, or ``ConfigurationError`` naming the first variable that does not parse."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "?"
        raise ConfigurationError(f"PASSPOST_{field.upper()}", first["msg"]) from exc


def prepare(settings: Settings) -> None:
    """Validate the configuration, then make the data directory private (see module doc)."""
    for check in CHECKS:
        check(settings)
    secure_data_dir(settings.data_dir)


# -- file permissions --------------------------------------------------------------------


def private_umask() -> None:
    """Files and directories this process creates (databases, queue, key) are the owner's."""
    os.umask(0o077)


def _private_files(data_dir: Path) -> Iterator[Path]:
    for path in data_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            yield path


def secure_data_dir(data_dir: Path) -> None:
    """Data directory 0700, every file directly in it (databases, queue, key) 0600."""
    data_dir.mkdir(parents=True, exist_ok=True)
    _chmod(data_dir, PRIVATE_DIR)
    for path in _private_files(data_dir):
        _chmod(path, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) != mode:
        try:
            path.chmod(mode)
        except OSError as exc:
            raise ConfigurationError(
                "PASSPOST_DATA_DIR", f"cannot make {path} private (mode {mode:o}): {exc.strerror}"
            ) from exc


# -- checks ------------------------------------------------------------------------------


def _check_public_url(settings: Settings) -> None:
    parts = urlsplit(settings.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            "PASSPOST_PUBLIC_URL",
            f"{settings.public_url!r} is not an absolute http(s) URL, e.g. https://passes.example.com",
        )


def _check_urls(settings: Settings) -> None:
    database = settings.resolved_database_url
    if not database.startswith(("sqlite:///", "postgresql")):
        raise ConfigurationError(
            "PASSPOST_DATABASE_URL", "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    queue = settings.resolved_queue_url
    schemes = ("sqlite:///", "redis://", "rediss://", "unix://", "postgresql://", "postgres://")
    if not queue.startswith((*schemes, "postgresql+psycopg://")):
        raise ConfigurationError(
            "PASSPOST_QUEUE_URL", "use sqlite:///PATH, postgresql://… or redis://HOST:PORT/DB"
        )


def _check_smtp(settings: Settings) -> None:
    from passpost.channels.email import SmtpConfig

    if not settings.smtp_url:
        return
    try:
        SmtpConfig.from_url(
            settings.smtp_url,
            default_sender=settings.smtp_default_sender,
            concurrency=settings.smtp_concurrency,
        )
    except ValueError as exc:
        raise ConfigurationError("PASSPOST_SMTP_URL", str(exc)) from exc


def _check_sms(settings: Settings) -> None:
    from passpost.channels.sms import check_sms_url

    if not settings.sms_url:
        return
    try:
        check_sms_url(settings.sms_url)
    except ValueError as exc:
        raise ConfigurationError("PASSPOST_SMS_URL", str(exc)) from exc


def _check_apns(settings: Settings) -> None:
    from passpost.passkit.apns.auth import ApnsConfigError
    from passpost.passkit.apns.token import load_p8_key

    if settings.apns_key_file is not None:
        data = _read("PASSPOST_APNS_KEY_FILE", settings.apns_key_file)
        try:
            load_p8_key(data)
        except ApnsConfigError as exc:
            raise ConfigurationError("PASSPOST_APNS_KEY_FILE", str(exc)) from exc
        for variable, value in (
            ("PASSPOST_APNS_KEY_ID", settings.apns_key_id),
            ("PASSPOST_APNS_TEAM_ID", settings.apns_team_id),
        ):
            if not value:
                raise ConfigurationError(variable, "is needed with PASSPOST_APNS_KEY_FILE")
    if settings.apns_ca_file is not None:
        _certificates("PASSPOST_APNS_CA_FILE", settings.apns_ca_file)


def _check_trust_anchors(settings: Settings) -> None:
    if settings.trust_anchors is not None:
        _certificates("PASSPOST_TRUST_ANCHORS", settings.trust_anchors)


def _read(variable: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(variable, f"cannot read {path}: {exc.strerror}") from exc


def _certificates(variable: str, path: Path) -> None:
    from passpost.pkpass import PkpassError, load_certificates

    _read(variable, path)
    try:
        if not load_certificates(path):
            raise ConfigurationError(variable, f"{path} holds no certificate")
    except PkpassError as exc:
        raise ConfigurationError(variable, exc.message) from exc


def _check_secret_key(settings: Settings) -> None:
    from passpost import secrets

    variable = "PASSPOST_SECRET_KEY"
    where = "the value" if settings.secret_key else str(settings.data_dir / "secret.key")
    if not settings.secret_key and (settings.data_dir / "secret.key").exists():
        _read(variable, settings.data_dir / "secret.key")
    try:
        secrets.cipher()  # every configured key, not only the first
    except ValueError as exc:
        raise ConfigurationError(
            variable, f"{where} is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from exc
    for sample, kind in _sealed_samples(settings):
        try:
            if kind == "link":
                secrets.open_link_token(sample)
            else:
                secrets.decrypt(sample)
        except ValueError as exc:
            raise ConfigurationError(variable, SHARE_THE_KEY) from exc


def _sealed_samples(settings: Settings) -> Iterator[tuple[str, str]]:
    from passpost.db import get_engine

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return  # a new install: nothing stored yet (and no file to create here)
    engine = get_engine(url)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        for table, column, kind in _SEALED:
            if table not in tables:
                continue
            query = f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 1"
            sample = connection.execute(text(query)).scalar()
            if sample:
                yield sample, kind


CHECKS: tuple[Callable[[Settings], None], ...] = (
    _check_public_url,
    _check_urls,
    _check_smtp,
    _check_sms,
    _check_apns,
    _check_trust_anchors,
    _check_secret_key,
)
