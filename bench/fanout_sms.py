"""SMS fan-out over SMPP: SmppProvider vs a bare asyncio SMPP client, same SMSC, same window.

Both runs submit ``--count`` texts (default 100,000) to the test SMSC (tests/peers/
smpp_server, the npm ``smpp`` server) with the same window of outstanding submit_sm and the
same PDU bytes; with receipts on (the default) both also answer every deliver_sm. The raw
client is the ceiling: no text encoding, no futures, no per-message coroutine, one write per
batch of window refills. Prints msgs/s for both and the ratio provider/raw.

Usage: python bench/fanout_sms.py [--count 100000] [--window 10] [--rounds 4] [--no-receipts]
The lead's bench/fanout.py calls ``run_sms_bench(count=..., window=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from passpost.channels.base import Receipt, SmsMessage
from passpost.channels.sms import smpp_pdu
from passpost.channels.sms.smpp import SmppProvider, destination_address
from passpost.channels.sms.smpp_text import encode_text
from tests.peers.smpp_server.smsc import Smsc

TEXT = "Hello {n}, your pass is ready: https://pass.example/p/{n:08x}"
SUBMIT_SM_RESP = smpp_pdu.SUBMIT_SM | smpp_pdu.RESPONSE_BIT
BIND_RESP = 0x80000009


def number(n: int) -> str:
    """A distinct E.164 number per recipient."""
    return f"+4915{n:09d}"


@dataclass
class SmsBenchResult:
    count: int
    window: int
    provider_rate: float
    raw_rate: float
    provider_cpu_us: float  # this process's CPU time per message
    raw_cpu_us: float

    @property
    def ratio(self) -> float:
        return self.provider_rate / self.raw_rate if self.raw_rate else 0.0

    def lines(self) -> list[str]:
        """The human-readable report."""
        return [
            f"SMPP fan-out: {self.count} SMS, window {self.window}",
            f"  SmppProvider     {self.provider_rate:9.0f} msgs/s"
            f"  {self.provider_cpu_us:6.1f} µs client CPU/msg",
            f"  raw SMPP client  {self.raw_rate:9.0f} msgs/s"
            f"  {self.raw_cpu_us:6.1f} µs client CPU/msg",
            f"  ratio provider/raw: {self.ratio:.2f}",
        ]


async def provider_run(smsc: Smsc, count: int, window: int, receipts: bool) -> float:
    """Seconds for ``count`` sends (and their receipts) through a bound SmppProvider."""
    got: list[Receipt] = []

    async def on_receipt(receipt: Receipt) -> None:
        got.append(receipt)

    provider = SmppProvider.from_url(smsc.url(window=window), on_receipt=on_receipt)
    await provider.send(SmsMessage("warm-up", number(count), "warm-up"))  # connect + bind
    next_n = 0

    async def worker() -> None:
        nonlocal next_n
        while next_n < count:
            n = next_n
            next_n += 1
            await provider.send(SmsMessage(str(n), number(n), TEXT.format(n=n)))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(window * 4)))
    if receipts:
        while len(got) < count + 1:
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await provider.aclose()
    return elapsed


class RawClient(asyncio.Protocol):
    """The ceiling: keep ``window`` submit_sm outstanding, count responses, ack receipts."""

    def __init__(self, count: int, window: int, receipts: bool) -> None:
        self.count, self.window, self.receipts = count, window, receipts
        self.sent = self.answered = self.receipts_seen = 0
        self.buffer = bytearray()
        self.bound = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.source = smpp_pdu.Address(5, 0, "Passpost")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            smpp_pdu.bind_transceiver(1, system_id="raw", password="raw", system_type="")
        )

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out: list[bytes] = []
        while len(self.buffer) >= 16:
            length, command_id, _status, sequence = struct.unpack_from(">LLLL", self.buffer)
            if len(self.buffer) < length:
                break
            del self.buffer[:length]
            if command_id == SUBMIT_SM_RESP:
                self.answered += 1
            elif command_id == smpp_pdu.DELIVER_SM:
                self.receipts_seen += 1
                out.append(smpp_pdu.deliver_sm_resp(sequence))
            elif command_id == BIND_RESP:
                self.bound.set_result(None)
        out += self.refill()
        if out:
            self.transport.write(b"".join(out))
        finished = self.answered == self.count and (
            not self.receipts or self.receipts_seen == self.count
        )
        if finished and not self.done.done():
            self.done.set_result(None)

    def refill(self) -> list[bytes]:
        """The submit_sm PDUs that bring the window back to full."""
        if not self.bound.done():
            return []
        pdus = []
        while self.sent < self.count and self.sent - self.answered < self.window:
            n = self.sent
            self.sent += 1
            part = TEXT.format(n=n).encode("ascii")  # pure ASCII letters: same septets
            pdus.append(
                smpp_pdu.submit_sm(
                    n + 2,
                    source=self.source,
                    destination=destination_address(number(n)),
                    esm_class=0,
                    data_coding=0,
                    short_message=part,
                )
            )
        return pdus


async def raw_run(smsc: Smsc, count: int, window: int, receipts: bool) -> float:
    """Seconds for the same submits from a bare asyncio protocol."""
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(
        lambda: RawClient(count, window, receipts), "127.0.0.1", smsc.port
    )
    await client.bound
    started = time.perf_counter()
    transport.write(b"".join(client.refill()))
    await client.done
    elapsed = time.perf_counter() - started
    transport.close()
    return elapsed


def check_same_bytes() -> None:
    """Both runs put identical short_message bytes on the wire for the bench's texts."""
    for n in (0, 12345):
        text = TEXT.format(n=n)
        assert encode_text(text, 0).parts == (text.encode("ascii"),)


def run_sms_bench(
    count: int = 100_000, window: int = 10, receipts: bool = True, rounds: int = 4
) -> SmsBenchResult:
    """Run both clients against one fresh SMSC process; return their rates.

    The count is cut into ``rounds`` that alternate which client goes first, so a change
    in machine load during the run weighs on both alike.
    """
    check_same_bytes()
    chunks = [count // rounds + (1 if i < count % rounds else 0) for i in range(rounds)]
    seconds = {"raw": 0.0, "provider": 0.0}
    cpu = {"raw": 0.0, "provider": 0.0}
    with tempfile.TemporaryDirectory() as workdir:
        smsc = Smsc(Path(workdir), receipts=receipts, record=False, journal=False).start()
        try:
            for index, chunk in enumerate(chunks):
                order = ("raw", "provider") if index % 2 == 0 else ("provider", "raw")
                for who in order:
                    run = raw_run if who == "raw" else provider_run
                    cpu_before = time.process_time()
                    seconds[who] += asyncio.run(run(smsc, chunk, window, receipts))
                    cpu[who] += time.process_time() - cpu_before
            accepted = smsc.stats()["accepted"]
        finally:
            smsc.stop()
    # Every submit of both clients was accepted (plus one provider warm-up per round).
    assert accepted == 2 * count + rounds, accepted
    return SmsBenchResult(
        count,
        window,
        provider_rate=count / seconds["provider"],
        raw_rate=count / seconds["raw"],
        provider_cpu_us=cpu["provider"] / count * 1e6,
        raw_cpu_us=cpu["raw"] / count * 1e6,
    )


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--no-receipts", action="store_true")
    args = parser.parse_args()
    result = run_sms_bench(
        args.count, args.window, receipts=not args.no_receipts, rounds=args.rounds
    )
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
