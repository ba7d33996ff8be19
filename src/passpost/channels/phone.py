"""E.164 for the SMS providers: ``passpost.phone``, an invalid number a permanent failure."""

from __future__ import annotations

from passpost import phone
from passpost.channels.base import PermanentError


class InvalidPhoneNumber(PermanentError):
    """The number cannot be normalised to a valid E.164 number (``reason`` says why)."""


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """The E.164 form of ``raw``, or raise ``InvalidPhoneNumber`` (never retried)."""
    try:
        return phone.to_e164(raw, default_region)
    except phone.InvalidPhoneNumber as exc:
        raise InvalidPhoneNumber(exc.reason) from exc


def is_valid_phone(raw: str, default_region: str = "US") -> bool:
    """True when ``raw`` normalises to a valid E.164 number."""
    try:
        phone.to_e164(raw, default_region)
    except phone.InvalidPhoneNumber:
        return False
    return True
