"""The one E.164 normaliser, and the two doors that use it agreeing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passpost.audience.validation import normalize_mobile
from passpost.channels.phone import is_valid_phone, normalize_phone
from passpost.errors import BadRequest
from passpost.phone import InvalidPhoneNumber, to_e164


def test_a_long_number_without_plus_is_read_as_international() -> None:
    # The original API typed mobileNumber as a long.
    assert to_e164("919030952000", "US") == "+919030952000"
    assert to_e164(12025550143, "GB") == "+12025550143"


def test_a_national_number_is_read_in_its_region() -> None:
    assert to_e164("030 901820", "DE") == "+4930901820"
    with pytest.raises(InvalidPhoneNumber) as info:
        to_e164("030 901820", "US")
    assert "'030 901820' is invalid" in info.value.reason


@given(
    st.one_of(st.text(max_size=20), st.from_regex(r"\+?[0-9 ]{6,16}", fullmatch=True)),
    st.sampled_from(["US", "DE", "GB", "IN"]),
)
def test_audience_and_sms_accept_and_normalise_the_same_numbers(raw: str, region: str) -> None:
    try:
        stored = normalize_mobile(raw, region)
    except BadRequest as exc:
        assert exc.error_code == "INVALID_MOBILE_NUMBER"
        assert not is_valid_phone(raw, region)
        return
    assert normalize_phone(raw, region) == stored
    assert normalize_phone(stored, "US") == stored  # what is stored is sent unchanged
