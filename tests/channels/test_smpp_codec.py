"""SMPP pieces that need no server: text encoding, PDU bytes, receipts, URLs, rate limiting."""

from __future__ import annotations

import asyncio

import gsm0338  # noqa: F401 - registers the reference "gsm03.38" codec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from smpplib import smpp

from passpost.channels.base import PermanentError, Receipt, TransientError
from passpost.channels.sms import smpp_pdu, smpp_session
from passpost.channels.sms.smpp import SmppConfig, check_status, source_address
from passpost.channels.sms.smpp_pdu import Address
from passpost.channels.sms.smpp_receipts import (
    ReceiptEvent,
    ReceiptPump,
    ReceiptRouter,
    receipt_of,
)
from passpost.channels.sms.smpp_text import (
    DATA_CODING_GSM,
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
    TextTooLong,
    encode_text,
    gsm_encode,
)

GSM_TEXT = st.text(
    alphabet="@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}\\[~]|€\n"
)


def reassemble(parts: tuple[bytes, ...]) -> tuple[bytes, list[bytes]]:
    """Strip and collect the UDHs; return the joined payload."""
    headers = [part[:6] for part in parts]
    return b"".join(part[6:] for part in parts), headers


# --- text ------------------------------------------------------------------------------


def test_short_latin_text_is_one_gsm_part() -> None:
    encoded = encode_text("Hi Jane, your pass: https://p.example/x €5 [ok]", reference=1)
    assert encoded.data_coding == DATA_CODING_GSM
    assert encoded.esm_class == 0
    assert encoded.parts[0].decode("gsm03.38") == "Hi Jane, your pass: https://p.example/x €5 [ok]"


def test_160_septets_fit_one_part_but_extension_characters_count_double() -> None:
    assert len(encode_text("a" * 160, 0).parts) == 1
    assert len(encode_text("a" * 159 + "€", 0).parts) == 2  # € is ESC + 0x65: 161 septets
    assert len(encode_text("a" * 161, 0).parts) == 2


def test_300_character_text_becomes_two_concatenated_parts() -> None:
    text = ("Your boarding pass is ready. " * 11)[:300]
    encoded = encode_text(text, reference=0x1A7)
    assert encoded.esm_class == ESM_CLASS_UDHI
    assert [len(part) for part in encoded.parts] == [6 + 153, 6 + 147]
    payload, headers = reassemble(encoded.parts)
    assert headers == [bytes.fromhex("050003a70201"), bytes.fromhex("050003a70202")]
    assert payload.decode("gsm03.38") == text


def test_escape_pair_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10
    encoded = encode_text(text, 0)
    assert encoded.parts[0][-1] != 0x1B
    assert len(encoded.parts[0]) == 6 + 152
    assert reassemble(encoded.parts)[0].decode("gsm03.38") == text


def test_non_latin_text_is_ucs2() -> None:
    encoded = encode_text("Ваш пропуск готов", 0)
    assert encoded.data_coding == DATA_CODING_UCS2
    assert encoded.parts == ("Ваш пропуск готов".encode("utf-16-be"),)


def test_long_ucs2_text_splits_at_67_characters_keeping_surrogate_pairs() -> None:
    assert len(encode_text("ж" * 70, 0).parts) == 1
    text = "ж" * 66 + "😀" + "ж" * 10  # the emoji would straddle the 67-unit boundary
    encoded = encode_text(text, 5)
    assert [len(part) - 6 for part in encoded.parts] == [132, 24]
    assert reassemble(encoded.parts)[0].decode("utf-16-be") == text
    long = encode_text("я" * 150, 9)
    assert [len(part) - 6 for part in long.parts] == [134, 134, 32]


def test_backtick_and_literal_escape_are_not_gsm() -> None:
    assert gsm_encode("`") is None
    assert gsm_encode("\x1b") is None
    assert encode_text("`quoted`", 0).data_coding == DATA_CODING_UCS2


def test_more_than_255_parts_is_refused() -> None:
    with pytest.raises(TextTooLong):
        encode_text("x" * (153 * 255 + 1), 0)


@given(GSM_TEXT)
def test_gsm_encoding_matches_the_reference_codec(text: str) -> None:
    assert gsm_encode(text) == text.encode("gsm03.38")


@given(st.text(min_size=1, max_size=600), st.integers(0, 255))
def test_any_text_round_trips_through_its_parts(text: str, reference: int) -> None:
    encoded = encode_text(text, reference)
    if len(encoded.parts) == 1:
        payload = encoded.parts[0]
    else:
        payload, headers = reassemble(encoded.parts)
        total = len(encoded.parts)
        assert headers == [bytes((5, 0, 3, reference, total, n)) for n in range(1, total + 1)]
    codec = "gsm03.38" if encoded.data_coding == DATA_CODING_GSM else "utf-16-be"
    assert payload.decode(codec, errors="surrogatepass") == text
    assert all(len(part) <= 140 or encoded.data_coding == DATA_CODING_GSM for part in encoded.parts)
    assert all(len(part) <= 160 for part in encoded.parts)


# --- PDUs ------------------------------------------------------------------------------


@given(
    st.integers(1, 0x7FFFFFFF),
    st.sampled_from([Address(5, 0, "Passpost"), Address(1, 1, "4930123"), Address(0, 0, "")]),
    st.from_regex(r"[0-9]{6,15}", fullmatch=True),
    st.sampled_from([0, 0x40]),
    st.sampled_from([0, 8]),
    st.binary(min_size=1, max_size=160),
)
def test_submit_sm_bytes_equal_smpplibs_encoder(
    sequence: int, source: Address, number: str, esm: int, coding: int, body: bytes
) -> None:
    fields = {
        "source": source,
        "destination": Address(1, 1, number),
        "esm_class": esm,
        "data_coding": coding,
        "short_message": body,
    }
    assert smpp_pdu.submit_sm(sequence, **fields) == smpp_pdu.submit_sm_smpplib(sequence, **fields)
    parsed = smpp.parse_pdu(smpp_pdu.submit_sm(sequence, **fields), client=None, sequence=0)
    assert (parsed.sequence, parsed.short_message, parsed.registered_delivery) == (
        sequence,
        body,
        1,
    )


def test_status_classification_names_the_status() -> None:
    def response(status: int) -> smpp_pdu.Response:
        return smpp_pdu.Response(smpp_pdu.SUBMIT_SM | smpp_pdu.RESPONSE_BIT, status, 1)

    for transient in (0x58, 0x14, 0x08):
        with pytest.raises(TransientError):
            check_status(response(transient))
    with pytest.raises(PermanentError, match=r"ESME_RINVDSTADR \(0x0000000B\)"):
        check_status(response(0x0B))
    with pytest.raises(TransientError, match="ESME_RTHROTTLED"):
        check_status(response(0x58))
    with pytest.raises(PermanentError, match=r"ESME_UNKNOWN \(0x00000444\)"):
        check_status(response(0x444))


# --- receipts --------------------------------------------------------------------------


def deliver_sm_bytes(text: bytes, esm_class: int = 0x04, **fields: object) -> bytes:
    """A deliver_sm as smpplib encodes it."""
    pdu = smpp.make_pdu(
        "deliver_sm", client=None, sequence=0, esm_class=esm_class, short_message=text, **fields
    )
    pdu.sequence = 3
    return bytes(pdu.generate())


def deliver_sm(text: bytes, esm_class: int = 0x04, **fields: object) -> smpp_pdu.DeliverSm:
    """Our decoding of smpplib's deliver_sm."""
    return smpp_pdu.parse_deliver_sm(deliver_sm_bytes(text, esm_class, **fields))


@given(
    st.binary(max_size=160),
    st.integers(0, 255),
    st.from_regex(r"[0-9]{0,15}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[0-9a-f]{1,64}", fullmatch=True)),
    st.one_of(st.none(), st.integers(0, 8)),
)
def test_deliver_sm_decoding_agrees_with_smpplib(
    body: bytes, esm: int, source: str, receipted: str | None, state: int | None
) -> None:
    fields: dict[str, object] = {"source_addr": source, "data_coding": 8}
    if receipted is not None:
        fields["receipted_message_id"] = receipted
    if state is not None:
        fields["message_state"] = state
    data = deliver_sm_bytes(body, esm, **fields)
    ours = smpp_pdu.parse_deliver_sm(data)
    reference = smpp_pdu.parse(data)
    assert ours.esm_class == reference.esm_class
    assert ours.short_message == (reference.short_message or b"")
    assert ours.receipted_message_id == (
        None if reference.receipted_message_id is None else reference.receipted_message_id.decode()
    )
    assert ours.message_state == reference.message_state


@given(st.integers(0, 0x7FFFFFFF), st.from_regex(r"[0-9A-Za-z]{0,64}", fullmatch=True))
def test_submit_sm_resp_decoding_agrees_with_smpplib(sequence: int, message_id: str) -> None:
    pdu = smpp.make_pdu("submit_sm_resp", client=None, message_id=message_id)
    pdu.sequence = sequence
    data = bytes(pdu.generate())
    assert smpp_pdu.parse_response(data) == smpp_pdu.Response(
        smpp_pdu.SUBMIT_SM | smpp_pdu.RESPONSE_BIT, 0, sequence, message_id
    )


def test_error_response_without_body() -> None:
    data = smpp_pdu.HEADER.pack(16, smpp_pdu.SUBMIT_SM | smpp_pdu.RESPONSE_BIT, 0x58, 9)
    response = smpp_pdu.parse_response(data)
    assert (response.status, response.message_id, response.command) == (0x58, "", "submit_sm_resp")


RECEIPT_TEXT = (
    b"id:7F3A sub:001 dlvrd:001 submit date:2611270101 done date:2611270102"
    b" stat:DELIVRD err:000 text:Hi"
)


def test_receipt_from_text() -> None:
    assert receipt_of(deliver_sm(RECEIPT_TEXT)) == ReceiptEvent("7F3A", "DELIVRD")
    undeliv = RECEIPT_TEXT.replace(b"DELIVRD", b"UNDELIV")
    assert receipt_of(deliver_sm(undeliv)) == ReceiptEvent("7F3A", "UNDELIV")


def test_receipt_tlvs_win_over_text() -> None:
    pdu = deliver_sm(RECEIPT_TEXT, receipted_message_id="0000007f3a", message_state=5)
    assert receipt_of(pdu) == ReceiptEvent("0000007f3a", "UNDELIV")


def test_mobile_originated_text_is_no_receipt() -> None:
    assert receipt_of(deliver_sm(b"STOP", esm_class=0)) is None


def test_router_passes_single_messages_and_ignores_enroute() -> None:
    router = ReceiptRouter()
    assert router.route(ReceiptEvent("a", "ENROUTE")) is None
    assert router.route(ReceiptEvent("a", "DELIVRD")) == Receipt("a", True, "DELIVRD")
    assert router.route(ReceiptEvent("b", "EXPIRED")) == Receipt("b", False, "EXPIRED")


def test_router_reports_a_multipart_message_once_all_parts_are_delivered() -> None:
    router = ReceiptRouter()
    group = router.new_group(3)
    for part_id in ("p1", "p2", "p3"):
        router.add_part(group, part_id)
    assert router.route(ReceiptEvent("p2", "DELIVRD")) is None
    assert router.route(ReceiptEvent("p1", "DELIVRD")) is None
    assert router.route(ReceiptEvent("p3", "DELIVRD")) == Receipt("p1", True, "DELIVRD")
    assert router.route(ReceiptEvent("p3", "DELIVRD")) is None  # a repeat says nothing


def test_router_reports_a_failed_part_once_and_a_late_delivery_cannot_undo_it() -> None:
    router = ReceiptRouter()
    group = router.new_group(2)
    router.add_part(group, "p1")
    router.add_part(group, "p2")
    assert router.route(ReceiptEvent("p2", "UNDELIV")) == Receipt("p1", False, "UNDELIV")
    assert router.route(ReceiptEvent("p1", "DELIVRD")) is None


def test_router_reopens_a_group_whose_receipt_was_not_handed_over() -> None:
    router = ReceiptRouter()
    group = router.new_group(2)
    router.add_part(group, "p1")
    router.add_part(group, "p2")
    assert router.route(ReceiptEvent("p1", "DELIVRD")) is None
    event = ReceiptEvent("p2", "DELIVRD")
    assert router.route(event) == Receipt("p1", True, "DELIVRD")
    router.reopen(event)
    assert router.route(event) == Receipt("p1", True, "DELIVRD")


def test_abandoned_group_reports_nothing() -> None:
    router = ReceiptRouter()
    group = router.new_group(2)
    router.add_part(group, "p1")
    router.abandon(group)
    assert router.route(ReceiptEvent("p1", "DELIVRD")) is None


# --- configuration -----------------------------------------------------------------------


def test_url_parsing() -> None:
    config = SmppConfig.from_url(
        "smpp://pass%40post:s%3Acret@smsc.example:2776?source=%2B4930123456&window=25"
        "&rate=50&enquire_link=15&system_type=VMA&source_npi=9"
    )
    assert (config.system_id, config.password, config.system_type) == ("pass@post", "s:cret", "VMA")
    assert (config.host, config.port) == ("smsc.example", 2776)
    assert (config.window, config.rate) == (25, 50.0)
    assert config.enquire_link == 15.0
    assert config.source == Address(1, 9, "4930123456")
    assert SmppConfig.from_url("smpp://a:b@h").port == 2775


@pytest.mark.parametrize(
    "url",
    [
        "http://a:b@h:1",
        "smpp://a:b@:1",
        "smpp://sixteen-chars-id:b@h",
        "smpp://a:ninechars@h",
        "smpp://a:b@h?source=TwelveLetter",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        SmppConfig.from_url(url)


def test_source_address_kinds() -> None:
    assert source_address("Passpost") == Address(5, 0, "Passpost")
    assert source_address("+4930123") == Address(1, 1, "4930123")
    assert source_address("12345") == Address(0, 1, "12345")
    assert source_address("12345", ton=3, npi=0) == Address(3, 0, "12345")
    assert source_address("") == Address(0, 0, "")


# --- rate limiting -----------------------------------------------------------------------


def test_rate_limiter_spaces_acquisitions() -> None:
    clock = [100.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))

    async def run() -> None:
        limiter = smpp_session.RateLimiter(10, clock=lambda: clock[0], sleep=fake_sleep)
        for _ in range(4):
            await limiter.acquire()
        clock[0] += 1.0  # idle time is not banked into a burst beyond one slot
        await limiter.acquire()
        unlimited = smpp_session.RateLimiter(0)
        for _ in range(3):
            await unlimited.acquire()

    asyncio.run(run())
    assert sleeps == [0.1, 0.2, 0.3]


def test_receipt_pump_bounds_concurrency_and_handles_everything() -> None:
    async def run() -> tuple[int, list[int]]:
        release = asyncio.Event()
        running = peak = 0
        handled: list[int] = []

        async def handle(item: int) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
            handled.append(item)

        pump: ReceiptPump[int] = ReceiptPump(handle, workers=3)
        for item in range(20):
            pump.put(item)
        await asyncio.sleep(0)
        release.set()
        await pump.join(timeout=5)
        return peak, handled

    peak, handled = asyncio.run(run())
    assert peak == 3
    assert sorted(handled) == list(range(20))
