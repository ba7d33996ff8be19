"""What became of one push, and how APNs' answers are classified."""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
from dataclasses import dataclass
from typing import NamedTuple


class PushOutcome(enum.StrEnum):
    OK = "ok"  # 200: accepted by APNs
    UNREGISTERED = "unregistered"  # 410: the token is dead; delete the registration
    PERMANENT = "permanent"  # never succeeds as sent (bad token, topic, credentials)
    TRANSIENT = "transient"  # 429/5xx/connection trouble still failing after retries


class PushTarget(NamedTuple):
    """One push to make: the device's push token and the topic (the pass type identifier)."""

    token: str
    topic: str


@dataclass(frozen=True)
class PushResult:
    token: str
    topic: str
    outcome: PushOutcome
    status: int | None  # HTTP status of the last attempt; None when nothing was answered
    reason: str  # APNs' reason ("Unregistered", "BadDeviceToken"...) or the transport error
    apns_id: str | None
    attempts: int
    retry_after: float | None = None  # seconds, when the last answer asked for a pause
    unregistered_at: dt.datetime | None = None  # 410: when APNs last knew the token invalid

    @property
    def ok(self) -> bool:
        """True when APNs accepted the push."""
        return self.outcome is PushOutcome.OK


# 403 reasons cured by a new provider JWT; any other 403 is a configuration problem.
REFRESH_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})


def classify(status: int | None) -> PushOutcome:
    """The outcome an answer means if no retry changes it (None: no answer at all)."""
    if status == 200:
        return PushOutcome.OK
    if status == 410:
        return PushOutcome.UNREGISTERED
    if status is None or status == 429 or status >= 500:
        return PushOutcome.TRANSIENT
    return PushOutcome.PERMANENT


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def parse_timestamp(value: object) -> dt.datetime | None:
    """APNs' 410 ``timestamp`` (milliseconds since the epoch) as an aware datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    return None
