"""SmppProvider against a real SMPP server process (npm ``smpp``, tests/peers/smpp_server)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from passpost.channels.base import (
    PermanentError,
    Receipt,
    SendResult,
    SmsMessage,
    TransientError,
)
from passpost.channels.sms.smpp import SmppProvider
from tests.peers.smpp_server.smsc import Smsc

# Each test runs the test SMSC (node) as a process.
pytestmark = pytest.mark.slow

NUMBER = "+4915112345678"


class Receipts:
    """An ``on_receipt`` callback that records what it gets."""

    def __init__(self) -> None:
        self.got: list[Receipt] = []
        self.fail_next = 0

    async def __call__(self, receipt: Receipt) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("ledger unavailable")
        self.got.append(receipt)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until ``condition()`` holds (the SMSC works in another process)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


def run(
    smsc: Smsc,
    body: Callable[[SmppProvider, Receipts], Awaitable[Any]],
    **query: Any,
) -> tuple[Any, Receipts]:
    """Run ``body`` with a provider bound to ``smsc``; always close the provider."""
    receipts = Receipts()

    async def main() -> Any:
        provider = SmppProvider.from_url(smsc.url(**query), on_receipt=receipts)
        try:
            return await body(provider, receipts)
        finally:
            await provider.aclose()

    return asyncio.run(main()), receipts


TEXT = "Your pass: https://pass.example/p/abc"


def sms(text: str = TEXT, to: str = NUMBER, key: str = "k") -> SmsMessage:
    """An SMS to ``to``."""
    return SmsMessage(key=key, to=to, text=text)


def test_submit_then_receipt_reports_delivered(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> SendResult:
        result = await provider.send(sms())
        await until(lambda: len(receipts.got) == 1, "one receipt")
        return result

    result, receipts = run(smsc, body)
    [record] = smsc.messages()
    assert result.provider_message_id == record["message_id"]
    assert receipts.got == [Receipt(record["message_id"], delivered=True, detail="DELIVRD")]
    assert record["destination_addr"] == "4915112345678"
    assert (record["dest_addr_ton"], record["dest_addr_npi"]) == (1, 1)
    assert (record["source_addr"], record["source_addr_ton"], record["source_addr_npi"]) == (
        "Passpost",
        5,
        0,
    )
    assert (record["registered_delivery"], record["data_coding"], record["esm_class"]) == (1, 0, 0)
    assert record["message"] == "Your pass: https://pass.example/p/abc"
    stats = smsc.stats()
    assert stats["receiptAcks"] == 1  # deliver_sm_resp went back with ESME_ROK
    assert stats["unbinds"] == 1  # aclose() unbound politely


def test_undelivered_receipt_in_text_form_only(smsc: Smsc) -> None:
    smsc.set_rules([{"prefix": "4477", "stat": "UNDELIV", "tlvs": False}])

    async def body(provider: SmppProvider, receipts: Receipts) -> SendResult:
        result = await provider.send(sms(to="+447700900123"))
        await until(lambda: len(receipts.got) == 1, "one receipt")
        return result

    result, receipts = run(smsc, body)
    assert receipts.got == [Receipt(str(result.provider_message_id), False, "UNDELIV")]


def test_permanent_error_status_is_permanent_error(smsc: Smsc) -> None:
    smsc.set_rules([{"prefix": "4499", "status": 0x0B}])

    async def body(provider: SmppProvider, receipts: Receipts) -> str:
        with pytest.raises(PermanentError) as caught:
            await provider.send(sms(to="+4499123456"))
        return caught.value.reason

    reason, _ = run(smsc, body)
    assert "ESME_RINVDSTADR" in reason
    assert smsc.messages() == []
    assert smsc.stats()["rejected"] == 1


def test_national_numbers_are_normalised_and_invalid_ones_never_sent(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        await provider.send(sms(to="0151 1234 5678"))
        for bad in ("+49 151 1234", "jane@example.com", "+" + "1" * 21):
            with pytest.raises(PermanentError, match="invalid"):
                await provider.send(sms(to=bad))

    async def main() -> None:
        provider = SmppProvider.from_url(smsc.url(), default_region="DE", window=3)
        assert provider.config.window == 3
        try:
            await body(provider, Receipts())
        finally:
            await provider.aclose()

    asyncio.run(main())
    [record] = smsc.messages()
    assert record["destination_addr"] == "4915112345678"


@pytest.mark.parametrize(
    ("status", "name"),
    [(0x58, "ESME_RTHROTTLED"), (0x14, "ESME_RMSGQFUL"), (0x08, "ESME_RSYSERR")],
)
def test_transient_status_is_retried_until_accepted(smsc: Smsc, status: int, name: str) -> None:
    smsc.set_rules([{"prefix": "4488", "status": status, "times": 2}])

    async def body(provider: SmppProvider, receipts: Receipts) -> tuple[list[str], SendResult]:
        reasons = []
        for _ in range(2):
            with pytest.raises(TransientError) as caught:
                await provider.send(sms(to="+4488123456"))
            reasons.append(caught.value.reason)
        return reasons, await provider.send(sms(to="+4488123456"))

    (reasons, result), _ = run(smsc, body)
    assert all(name in reason for reason in reasons)
    [record] = smsc.messages()
    assert result.provider_message_id == record["message_id"]
    assert smsc.stats()["submits"] == 3


def test_300_character_text_is_sent_as_concatenated_parts(smsc: Smsc) -> None:
    text = ("Hello Jane, your ticket for the concert is ready: https://p.example/p/x1 " * 5)[:300]

    async def body(provider: SmppProvider, receipts: Receipts) -> SendResult:
        result = await provider.send(sms(text))
        await until(lambda: smsc.stats()["receiptAcks"] == 2, "both part receipts answered")
        return result

    result, receipts = run(smsc, body)
    first, second = smsc.messages()
    assert first["esm_class"] & 0x40 and second["esm_class"] & 0x40
    assert first["data_coding"] == second["data_coding"] == 0
    reference = first["udh"][6:8]
    assert first["udh"] == f"050003{reference}0201"
    assert second["udh"] == f"050003{reference}0202"
    assert len(first["message"]) == 153
    assert first["message"] + second["message"] == text
    assert result.provider_message_id == first["message_id"]
    # Two part receipts, one message state: delivered, under the first part's id.
    assert receipts.got == [Receipt(first["message_id"], True, "DELIVRD")]


def test_multipart_failure_is_reported_once(smsc: Smsc) -> None:
    smsc.set_rules([{"prefix": "4477", "stat": "UNDELIV"}])

    async def body(provider: SmppProvider, receipts: Receipts) -> SendResult:
        result = await provider.send(sms("x" * 400, to="+4477009001"))
        await until(lambda: smsc.stats()["receiptAcks"] == 3, "three part receipts answered")
        return result

    result, receipts = run(smsc, body)
    assert len(smsc.messages()) == 3
    assert receipts.got == [Receipt(str(result.provider_message_id), False, "UNDELIV")]


def test_a_rejected_part_fails_the_message_and_its_accepted_parts_report_nothing(
    smsc: Smsc,
) -> None:
    # The first part is accepted (its receipt, UNDELIV, comes late); the second is refused.
    smsc.set_rules([{"prefix": "4466", "delay": 300, "stat": "UNDELIV", "receipt_delay": 300}])

    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        send = asyncio.ensure_future(provider.send(sms("y" * 320, to="+4466001")))
        await until(lambda: len(smsc.messages()) == 1, "first part received")
        smsc.set_rules([{"prefix": "4466", "status": 0x0B}])
        with pytest.raises(PermanentError, match="ESME_RINVDSTADR"):
            await send
        await until(lambda: smsc.stats()["receiptAcks"] == 1, "first part's receipt answered")

    _, receipts = run(smsc, body)
    assert smsc.stats()["rejected"] == 1
    assert receipts.got == []


def test_non_latin_text_is_sent_as_ucs2(smsc: Smsc) -> None:
    short = "Ваш посадочный талон готов"
    long = "Здравствуйте! " * 12  # 168 characters → 3 UCS-2 parts

    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        await provider.send(sms(short))
        await provider.send(sms(long))

    run(smsc, body)
    single, *parts = smsc.messages()
    assert (single["data_coding"], single["esm_class"], single["message"]) == (8, 0, short)
    assert [part["data_coding"] for part in parts] == [8, 8, 8]
    assert [part["udh"][-4:] for part in parts] == ["0301", "0302", "0303"]
    assert "".join(part["message"] for part in parts) == long


def test_gsm_extension_characters_reach_the_smsc_intact(smsc: Smsc) -> None:
    text = "Price 5€ [VIP] {row 3} ~ ^ \\ | £¥ ÄÖÜ @ $"

    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        await provider.send(sms(text))

    run(smsc, body)
    [record] = smsc.messages()
    assert (record["data_coding"], record["message"]) == (0, text)


def test_window_bounds_outstanding_submits_from_many_coroutines(smsc: Smsc) -> None:
    smsc.set_rules([{"prefix": "4433", "delay": 20}])
    numbers = [f"+44330{n:05d}" for n in range(200)]

    async def body(provider: SmppProvider, receipts: Receipts) -> list[SendResult]:
        return await asyncio.gather(*(provider.send(sms(to=n, key=n)) for n in numbers))

    results, _ = run(smsc, body, window=7)
    records = smsc.messages()
    assert sorted(r["destination_addr"] for r in records) == sorted(n[1:] for n in numbers)
    by_number = {r["destination_addr"]: r["message_id"] for r in records}
    assert [r.provider_message_id for r in results] == [by_number[n[1:]] for n in numbers]
    # The SMSC saw exactly the window in flight: concurrency used, never exceeded.
    assert smsc.stats()["maxOutstanding"] == 7


def test_rebinds_after_the_smsc_drops_the_session(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        await provider.send(sms(key="a"))
        assert smsc.drop_sessions() == 1
        # No send needed: the provider notices the drop and binds again by itself.
        await until(lambda: smsc.stats()["binds"] == 2, "a second bind")
        await provider.send(sms(key="b"))

    run(smsc, body)
    assert len(smsc.messages()) == 2
    assert smsc.stats()["binds"] == 2


def test_smsc_killed_and_restarted_mid_run_loses_nothing(smsc: Smsc) -> None:
    """Every message ends accepted; only sends in flight at the kill may be duplicated."""
    total = 400
    smsc.set_rules([{"prefix": "4422", "delay": 50}])
    in_flight_failures: list[str] = []

    async def send_with_retries(provider: SmppProvider, n: int) -> SendResult:
        # What the ledger does: retry a TransientError later.
        for _ in range(30):
            try:
                return await provider.send(sms(f"message {n}", to=f"+44220{n:05d}", key=str(n)))
            except TransientError as exc:
                if "lost before submit_sm_resp" in exc.reason:
                    in_flight_failures.append(str(n))
                await asyncio.sleep(0.05)
        raise AssertionError(f"message {n} never accepted")

    async def body(provider: SmppProvider, receipts: Receipts) -> list[SendResult]:
        sends = asyncio.gather(*(send_with_retries(provider, n) for n in range(total)))
        await until(lambda: len(smsc.journal()) >= total // 3, "a third accepted")
        await asyncio.to_thread(smsc.kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(smsc.start)
        return await sends

    results, _ = run(smsc, body, window=20)
    journal = smsc.journal()
    accepted: dict[str, int] = {}
    for record in journal:
        accepted[record["message"]] = accepted.get(record["message"], 0) + 1
    assert set(accepted) == {f"message {n}" for n in range(total)}
    duplicated = {text.split()[1] for text, count in accepted.items() if count > 1}
    assert duplicated <= set(in_flight_failures)
    assert in_flight_failures, "the kill should have caught sends in flight"
    ids = {r["message_id"] for r in journal}
    assert all(result.provider_message_id in ids for result in results)
    assert smsc.stats()["binds"] == 1  # the new process saw the re-bind


def test_enquire_link_keepalive_and_answering_the_smsc(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> None:
        await provider.send(sms())
        await until(lambda: smsc.stats()["enquireLinks"] >= 2, "two keep-alives while idle")
        smsc.admin("POST", "/enquire")
        await until(lambda: smsc.stats()["enquireLinkResps"] == 1, "our enquire_link_resp")

    run(smsc, body, enquire_link=0.2)


def test_hung_smsc_times_out_and_is_replaced_by_a_new_session(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> str:
        await provider.send(sms(key="before"))
        smsc.admin("POST", "/hang")  # TCP stays up, nothing is answered any more
        with pytest.raises(TransientError) as caught:
            await provider.send(sms(key="hung"))
        # The unanswered enquire_link condemns the session; a fresh bind follows.
        await until(lambda: smsc.stats()["binds"] == 2, "a second bind")
        await provider.send(sms(key="after"))
        return caught.value.reason

    reason, _ = run(smsc, body, timeout=1, enquire_link=0.3)
    assert "no response within 1s" in reason
    assert smsc.stats()["accepted"] == 2


def test_receipt_is_acknowledged_only_after_the_callback_succeeds(smsc: Smsc) -> None:
    async def body(provider: SmppProvider, receipts: Receipts) -> SendResult:
        receipts.fail_next = 1
        result = await provider.send(sms())
        await until(lambda: len(receipts.got) == 1, "receipt after the SMSC's retry")
        return result

    result, receipts = run(smsc, body)
    assert receipts.got == [Receipt(str(result.provider_message_id), True, "DELIVRD")]
    stats = smsc.stats()
    assert (stats["receiptNacks"], stats["receiptAcks"]) == (1, 1)


def test_rejected_bind_makes_sends_transient(tmp_path: Path) -> None:
    server = Smsc(tmp_path, system_id="passpost", password="right").start()
    try:

        async def body(provider: SmppProvider, receipts: Receipts) -> str:
            with pytest.raises(TransientError) as caught:
                await provider.send(sms())
            return caught.value.reason

        reason, _ = run(server, body, connect_timeout=1)
        assert "bind_transceiver rejected" in reason
        assert "ESME_RBINDFAIL" in reason
        assert server.messages() == []
    finally:
        server.stop()


def test_unreachable_smsc_makes_sends_transient(tmp_path: Path) -> None:
    server = Smsc(tmp_path).start()
    server.stop()  # the port is now closed

    async def body(provider: SmppProvider, receipts: Receipts) -> str:
        with pytest.raises(TransientError) as caught:
            await provider.send(sms())
        return caught.value.reason

    reason, _ = run(server, body, connect_timeout=0.5)
    assert "cannot connect" in reason


def test_send_after_aclose_is_transient(smsc: Smsc) -> None:
    async def main() -> None:
        provider = SmppProvider.from_url(smsc.url())
        await provider.send(sms())
        await provider.aclose()
        with pytest.raises(TransientError, match="closed"):
            await provider.send(sms())

    asyncio.run(main())
    assert smsc.stats()["unbinds"] == 1
