"""Phone numbers to E.164 with ``phonenumbers``; an invalid number is a permanent failure."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from passpost.channels.base import PermanentError

_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
    ValidationResult.TOO_SHORT: "it is too short",
    ValidationResult.TOO_LONG: "it is too long",
    ValidationResult.INVALID_LENGTH: "its length is not valid for its country",
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is missing or unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}


class InvalidPhoneNumber(PermanentError):
    """The number cannot be normalised to a valid E.164 number (``reason`` says why)."""


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """The E.164 form of ``raw`` (``+`` and digits), or raise ``InvalidPhoneNumber``.

    Numbers without a ``+``/international prefix are read as national numbers of
    ``default_region`` (an ISO 3166 alpha-2 code such as ``US`` or ``DE``).
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("No mobile number given.")
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except NumberParseException as exc:
        why = _PARSE_REASONS.get(exc.error_type, "it cannot be parsed")
        raise InvalidPhoneNumber(f"Mobile number {text!r} is invalid: {why}.") from exc
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _REASONS:
        raise InvalidPhoneNumber(f"Mobile number {text!r} is invalid: {_REASONS[possible]}.")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(
            f"Mobile number {text!r} is invalid: no such number range in its country."
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_valid_phone(raw: str, default_region: str = "US") -> bool:
    """True when ``raw`` normalises to a valid E.164 number."""
    try:
        normalize_phone(raw, default_region)
    except InvalidPhoneNumber:
        return False
    return True
