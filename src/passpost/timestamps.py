"""How answers write a moment: one format per wire convention.

* ``iso`` — passpost's own JSON fields (``createdAt``, ``notAfter``, ``startAt``, …):
  RFC 3339 in UTC with ``Z`` (``2026-11-27T08:24:48.123456Z``; microseconds when present).
* ``date_str`` — the original API's ``…DateStr`` display fields of stored records
  (``createdDateStr``): ``08/28/2017 12:23:28 PM UTC``.
* ``http_date`` — HTTP headers (``Last-Modified``): ``Sun, 06 Nov 1994 08:49:37 GMT``.
* ``epoch_ms`` — the original API's numeric times (the login's ``exp``).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime


def _utc(moment: datetime) -> datetime:
    # Stored times are UTC; a naive one (SQLite) is UTC too.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 UTC with ``Z``; None stays None."""
    return _utc(moment).isoformat().replace("+00:00", "Z") if moment else None


def date_str(moment: datetime | None) -> str:
    """The original API's display form, always in UTC; absent is "" (as the pages show)."""
    return _utc(moment).strftime("%m/%d/%Y %I:%M:%S %p UTC") if moment else ""


def http_date(moment: datetime) -> str:
    """An RFC 9110 HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.format_datetime(_utc(moment), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An ``If-Modified-Since`` value as aware UTC; None when absent or unparseable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _utc(parsed)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch."""
    return int(_utc(moment).timestamp() * 1000)
