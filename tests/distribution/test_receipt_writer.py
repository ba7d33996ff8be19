"""Receipts written in groups: each ``store`` returns only once its group is committed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from passpost.channels.base import Receipt
from passpost.distribution.runtime import ReceiptWriter


def receipt(n: int) -> Receipt:
    return Receipt(provider_message_id=f"m{n}", delivered=True)


def test_receipts_arriving_during_a_write_go_together_into_the_next() -> None:
    groups: list[list[str]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def write(receipts: list[Receipt]) -> None:
        if not groups:
            first_started.set()
            assert release_first.wait(5)
        groups.append([r.provider_message_id for r in receipts])

    async def main() -> list[bool]:
        writer = ReceiptWriter(write)
        first = asyncio.create_task(writer.store(receipt(0)))
        await asyncio.get_running_loop().run_in_executor(None, first_started.wait, 5)
        later = [asyncio.create_task(writer.store(receipt(n))) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        waiting = [not task.done() for task in (first, *later)]  # none returned before a write
        release_first.set()
        await asyncio.gather(first, *later)
        return waiting

    assert asyncio.run(main()) == [True, True, True, True]
    assert groups == [["m0"], ["m1", "m2", "m3"]]


def test_a_failed_write_fails_every_store_of_its_group_and_the_next_group_is_written() -> None:
    written: list[str] = []

    def write(receipts: list[Receipt]) -> None:
        if any(r.provider_message_id == "m1" for r in receipts):
            raise RuntimeError("database is locked")
        written.extend(r.provider_message_id for r in receipts)

    async def main() -> None:
        writer = ReceiptWriter(write)
        with pytest.raises(RuntimeError, match="locked"):
            await writer.store(receipt(1))
        await writer.store(receipt(2))

    asyncio.run(main())
    assert written == ["m2"]
