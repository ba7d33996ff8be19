"""One settings object, read from the environment (prefix ``PASSPOST_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SignaturePolicy = Literal["require", "warn", "off"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

APNS_PRODUCTION_URL = "https://api.push.apple.com"


class Settings(BaseSettings):
    """Everything configurable about passpost (SPEC §9)."""

    model_config = SettingsConfigDict(env_prefix="PASSPOST_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./passpost-data")
    database_url: str | None = None
    queue_url: str | None = None
    public_url: str = "http://127.0.0.1:8080"
    smtp_url: str | None = None
    smtp_default_sender: str = "passpost@localhost"
    smtp_concurrency: int = 8
    sms_url: str | None = None
    sms_max_chars: int = 459
    sms_default_region: str = "US"
    apns_url: str = APNS_PRODUCTION_URL
    apns_key_file: Path | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_ca_file: Path | None = None
    signature_policy: SignaturePolicy = "require"
    trust_anchors: Path | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    # Hosts a generated pass's image ``url`` may be fetched from (comma-separated, https
    # only). Empty: image URLs are refused, so no request can make passpost fetch an
    # address of the caller's choosing (SSRF).
    image_url_hosts: str = ""
    # Device logs (POST /api/v1/log, anonymous) kept; the oldest go first.
    device_log_max_rows: int = Field(default=10_000, ge=1)
    # Device registrations (anonymous, with a pass's shared token): a pass accepts
    # max(devices_per_pass, devices_per_recipient × its recipients); one client address
    # registers at most registrations_per_address new devices an hour.
    devices_per_pass: int = Field(default=10, ge=1)
    devices_per_recipient: int = Field(default=3, ge=1)
    registrations_per_address: int = Field(default=100, ge=1)
    retries: int = 10
    secret_key: str | None = Field(default=None, description="Fernet key for secrets at rest")
    workers: int = 4
    # Deliveries per queue task: each costs a claim, an outcome write, a feed and two queue
    # writes whatever its size (500: ~25 % less worker CPU per e-mail than 200).
    batch_size: int = 500
    lease_seconds: float = 120.0
    sweep_seconds: float = 5.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    log_format: LogFormat = "text"
    log_level: LogLevel = "INFO"
    # Requests per client address on the anonymous endpoints, per process ("off": none).
    rate_limit_passkit: str = "600/minute"
    rate_limit_device_log: str = "60/minute"
    rate_limit_links: str = "120/minute"
    rate_limit_receipts: str = "3000/minute"
    # Credential failures (Basic, login, refresh) before further tries are refused with 429.
    auth_failures_per_username: str = "10/5minutes"
    auth_failures_per_address: str = "30/5minutes"
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated IPs or
    # networks, "*" for any): the client address rate limits count by comes from there.
    trusted_proxies: str = "127.0.0.1,::1"

    @field_validator(
        "rate_limit_passkit",
        "rate_limit_device_log",
        "rate_limit_links",
        "rate_limit_receipts",
        "auth_failures_per_username",
        "auth_failures_per_address",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "off":
            return "off"
        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate such as 60/minute or 10/5minutes") from exc
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'passpost.db'}"

    @property
    def resolved_queue_url(self) -> str:
        """The queue URL, defaulting to its own SQLite file in the data directory."""
        return self.queue_url or f"sqlite:///{self.data_dir.resolve() / 'queue.db'}"

    @property
    def public_base(self) -> str:
        """The public URL without a trailing slash."""
        return self.public_url.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache after changing the env)."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
