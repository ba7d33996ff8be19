"""E.164 normalisation with phonenumbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passpost.channels.base import PermanentError
from passpost.channels.phone import InvalidPhoneNumber, is_valid_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+14155552671", "US", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "us", "+14155552671"),
        ("030 1234567", "DE", "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("011 49 30 1234567", "US", "+49301234567"),
        ("+44 7400 123456", "US", "+447400123456"),
        ("  +33 6 12 34 56 78 ", "FR", "+33612345678"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected
    assert is_valid_phone(raw, region)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "No mobile number given."),
        ("12", "it is too short"),
        ("+999 123456", "its country code is missing or unknown"),
        ("hello", "it is not a phone number"),
        ("+1 415 555 26711234", "it is too long"),
        ("+15550001234", "no such number range in its country"),
    ],
)
def test_invalid_numbers_raise_a_permanent_error_with_the_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalize_phone(raw, "US")
    assert isinstance(info.value, PermanentError)
    assert why in info.value.reason
    assert not is_valid_phone(raw, "US")


@given(st.text(max_size=30), st.sampled_from(["US", "DE", "GB", "IN", "BR"]))
def test_normalisation_returns_e164_or_raises_invalid(raw: str, region: str) -> None:
    try:
        number = normalize_phone(raw, region)
    except InvalidPhoneNumber as exc:
        assert exc.reason
        return
    assert number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16
    assert normalize_phone(number, "US") == number  # E.164 is a fixed point
