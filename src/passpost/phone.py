"""Phone numbers to E.164 with ``phonenumbers``: the one normaliser every door uses.

The audience stores numbers through it (an invalid one is a 400) and the SMS providers
send through it (an invalid one is a permanent send failure); each maps
``InvalidPhoneNumber`` to its own error.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

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


class InvalidPhoneNumber(ValueError):
    """The number has no valid E.164 form; ``reason`` is one sentence saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_e164(raw: str | int, region: str = "US") -> str:
    """The E.164 form of ``raw`` (``+`` and digits), or raise ``InvalidPhoneNumber``.

    Numbers without a ``+``/international prefix are read as national numbers of
    ``region`` (ISO 3166 alpha-2, such as ``US`` or ``DE``).
    """
    text = str(raw if raw is not None else "").strip()
    if not text:
        raise InvalidPhoneNumber("No mobile number given.")
    try:
        return _parse(text, region)
    except InvalidPhoneNumber:
        # The original API typed mobileNumber as a long: "919030952000" is +91 90309 52000.
        if text.isdigit() and len(text) > 10:
            try:
                return _parse("+" + text, region)
            except InvalidPhoneNumber:
                pass
        raise


def _parse(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region.upper())
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
