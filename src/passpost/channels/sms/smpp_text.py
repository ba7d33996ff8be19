"""SMS text → SMPP short_message parts: GSM 03.38 or UCS-2, concatenated with a UDH when long."""

from __future__ import annotations

from dataclasses import dataclass

from passpost.channels.sms.gsm import GSM_ESCAPE, gsm_encode

DATA_CODING_GSM = 0x00  # SMSC default alphabet (GSM 03.38, unpacked septets)
DATA_CODING_UCS2 = 0x08
ESM_CLASS_UDHI = 0x40

GSM_SINGLE = 160  # septets in one unconcatenated message
GSM_PART = 153  # septets per part once the 6-byte UDH (7 septets) takes its room
UCS2_SINGLE = 70  # UTF-16 code units
UCS2_PART = 67
MAX_PARTS = 255  # the UDH's part counter is one octet


class TextTooLong(ValueError):
    """The text needs more than 255 concatenated parts."""


@dataclass(frozen=True)
class EncodedText:
    """The short_message payloads for one text, with their data_coding and esm_class."""

    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]


def encode_text(text: str, reference: int) -> EncodedText:
    """Encode ``text`` as GSM 03.38 when it fits the alphabet, else UCS-2; split if long.

    ``reference`` (0–255) is the concatenation reference number shared by all parts.
    """
    septets = gsm_encode(text)
    if septets is None:
        return _ucs2(text, reference)
    if len(septets) <= GSM_SINGLE:
        return EncodedText(DATA_CODING_GSM, 0, (septets,))
    return _concatenated(DATA_CODING_GSM, _split_gsm(septets), reference)


def _ucs2(text: str, reference: int) -> EncodedText:
    # UTF-16 rather than strict UCS-2: handsets render surrogate pairs (emoji) fine.
    octets = text.encode("utf-16-be")
    if len(octets) <= UCS2_SINGLE * 2:
        return EncodedText(DATA_CODING_UCS2, 0, (octets,))
    return _concatenated(DATA_CODING_UCS2, _split_utf16(octets), reference)


def _split_gsm(septets: bytes) -> list[bytes]:
    """Cut into ≤153-septet chunks, never between an escape octet and its character."""
    chunks: list[bytes] = []
    start = 0
    while start < len(septets):
        end = min(start + GSM_PART, len(septets))
        # The codec never emits ESC as the second octet of a pair, so a trailing ESC opens one.
        if end < len(septets) and septets[end - 1] == GSM_ESCAPE:
            end -= 1
        chunks.append(septets[start:end])
        start = end
    return chunks


def _split_utf16(octets: bytes) -> list[bytes]:
    """Cut into ≤67-unit chunks, never inside a surrogate pair."""
    size = UCS2_PART * 2
    chunks: list[bytes] = []
    start = 0
    while start < len(octets):
        end = min(start + size, len(octets))
        if end < len(octets) and 0xD8 <= octets[end - 2] <= 0xDB:  # high surrogate last
            end -= 2
        chunks.append(octets[start:end])
        start = end
    return chunks


def _concatenated(data_coding: int, chunks: list[bytes], reference: int) -> EncodedText:
    total = len(chunks)
    if total > MAX_PARTS:
        raise TextTooLong(f"text needs {total} parts, at most {MAX_PARTS} are possible")
    ref = reference & 0xFF
    parts = tuple(
        bytes((0x05, 0x00, 0x03, ref, total, number)) + chunk
        for number, chunk in enumerate(chunks, start=1)
    )
    return EncodedText(data_coding, ESM_CLASS_UDHI, parts)
