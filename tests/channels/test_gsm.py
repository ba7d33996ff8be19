"""The one GSM 03.38 alphabet: what the HTTP providers send as text is what SMPP encodes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from passpost.channels.sms.gsm import GSM_CHARS, gsm_encode, is_gsm7

ALPHABET = "".join(sorted(GSM_CHARS))


@given(st.text(alphabet=st.sampled_from(ALPHABET + "€…çÇ\x1bé漢😀"), max_size=40))
def test_fits_gsm7_exactly_when_it_encodes(text: str) -> None:
    assert is_gsm7(text) == (gsm_encode(text) is not None)


def test_extension_characters_take_two_septets_and_others_do_not_fit() -> None:
    assert gsm_encode("{€}") == b"\x1b\x28\x1b\x65\x1b\x29"
    assert is_gsm7("Hello @ £5 [x]") and not is_gsm7("…") and not is_gsm7("\x1b")
