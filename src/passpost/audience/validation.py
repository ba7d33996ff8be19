"""Cleaning one recipient's attributes: e-mail syntax, E.164 mobile numbers, flags, lengths.

Used by the JSON API, the CSV import and ad-hoc recipients of the import call alike, so a
recipient is stored the same way whichever door it came through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from passpost.errors import BadRequest
from passpost.phone import InvalidPhoneNumber, to_e164

TEXT_LIMITS = {"first_name": 200, "last_name": 200, "state": 100, "country": 100}
FLAGS = ("sms_subscription", "email_subscription", "push_subscription", "voice_subscription")
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "mobile_number",
    "state",
    "country",
    *FLAGS,
    "last_active_at",
)
# The original's lastActiveDate: "08/23/2017", or with a time as its answers show it.
_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")
_ZONE_SUFFIX = re.compile(r"\s+(?!(?:AM|PM)$)[A-Z]{2,5}$")  # "EDT", "GMT": read as UTC

# Dot-atom characters, plus any printable non-ASCII character (RFC 6531, SMTPUTF8).
_LOCAL = re.compile(r"^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]|[^\x00-\x7f\s])+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TRUE = {"true", "yes", "y", "1", "t", "on"}
_FALSE = {"false", "no", "n", "0", "f", "off"}


def normalize_email(raw: str) -> str:
    """A lower-cased address with a plausible local part and a dotted DNS domain."""
    address = raw.strip().lower()
    local, at, domain = address.rpartition("@")
    bad = BadRequest(f"{raw.strip()!r} is not a valid e-mail address.", error_code="INVALID_EMAIL")
    if not at or not local or not domain or len(address) > 254 or len(local) > 64:
        raise bad
    # Dot-atom only: quoted local parts are legal but no real mailbox list uses them.
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise bad
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise bad from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise bad
    if labels[-1].isdigit():  # an IP address is not a mail domain here
        raise bad
    return f"{local}@{domain}"


def normalize_mobile(raw: str | int, region: str) -> str:
    """The number in E.164 (``+14155550100``); national numbers are read in ``region``."""
    try:
        return to_e164(raw, region)
    except InvalidPhoneNumber as exc:
        raise BadRequest(
            f"{str(raw).strip()!r} is not a valid mobile number (region {region}).",
            error_code="INVALID_MOBILE_NUMBER",
        ) from exc


def parse_flag(name: str, raw: object) -> bool:
    """A subscription flag from JSON (bool) or text (true/false, yes/no, 1/0)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(f"{name} must be true or false, not {raw!r}.", error_code="INVALID_FLAG")


def parse_date(raw: object) -> datetime:
    """A ``lastActiveDate``: MM/DD/YYYY [time], ISO 8601, or epoch milliseconds (UTC)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(raw / 1000, UTC)
        except (OverflowError, OSError, ValueError) as exc:  # before year 1 or after 9999
            raise BadRequest(
                f"lastActiveDate {raw} is not a date in epoch milliseconds.",
                error_code="INVALID_DATE",
            ) from exc
    text = _ZONE_SUFFIX.sub("", str(raw).strip())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"lastActiveDate {raw!r} is not a date (use MM/DD/YYYY or ISO 8601).",
            error_code="INVALID_DATE",
        ) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def clean_fields(raw: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """Validate and normalise the given attributes (snake_case keys); ``""`` means none."""
    cleaned: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in FIELDS:
            continue
        if name in FLAGS:
            if value is not None and value != "":  # absent flag: keep (or default to opt-in)
                cleaned[name] = parse_flag(_camel(name), value)
            continue
        text = None if value is None else str(value).strip()
        if not text:
            cleaned[name] = None
        elif name == "last_active_at":
            cleaned[name] = parse_date(value)
        elif name == "email":
            cleaned[name] = normalize_email(text)
        elif name == "mobile_number":
            cleaned[name] = normalize_mobile(value if isinstance(value, int) else text, region)
        elif len(text) > TEXT_LIMITS[name]:
            raise BadRequest(
                f"{_camel(name)} is longer than {TEXT_LIMITS[name]} characters.",
                error_code="FIELD_TOO_LONG",
            )
        else:
            cleaned[name] = text
    return cleaned


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
