"""Delivery receipts from deliver_sm, and folding the receipts of a message's parts into one."""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from passpost.channels.base import Receipt
from passpost.channels.sms.smpp_pdu import DeliverSm

ESM_TYPE_MASK = 0x3C  # esm_class bits 5–2: the message type
ESM_TYPE_RECEIPT = 0x04  # SMSC delivery receipt
DELIVERED = "DELIVRD"
# message_state TLV values (SMPP 3.4 §5.2.28) in the receipt text's own spelling.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
NOT_FINAL = frozenset({"ENROUTE"})

_ID = re.compile(rb"\bid:(\S+)", re.IGNORECASE)
_STAT = re.compile(rb"\bstat:(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class ReceiptEvent:
    """What one receipt deliver_sm says: which submit it is about, and its state."""

    message_id: str
    stat: str


def receipt_of(pdu: DeliverSm) -> ReceiptEvent | None:
    """The receipt in a deliver_sm, or ``None`` for a mobile-originated message.

    The TLVs (receipted_message_id, message_state) win over the free-form text: some SMSCs
    print the id in the text in another base than the one submit_sm_resp gave.
    """
    receipted = pdu.receipted_message_id
    is_receipt = pdu.esm_class & ESM_TYPE_MASK == ESM_TYPE_RECEIPT
    if not (is_receipt or receipted):
        return None
    body = pdu.short_message
    message_id = receipted or _match(_ID, body)
    stat = MESSAGE_STATES.get(pdu.message_state or 0, "") or _match(_STAT, body).upper()
    if not message_id or not stat:
        return None
    return ReceiptEvent(message_id, stat)


def _match(pattern: re.Pattern[bytes], body: bytes) -> str:
    found = pattern.search(body)
    return found.group(1).decode("latin-1") if found else ""


@dataclass
class PartGroup:
    """The parts of one concatenated message; its first part's id is the message's id."""

    total: int
    ids: list[str] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    settled: bool = False

    @property
    def message_id(self) -> str:
        """The id the ledger knows the message by: the first part's."""
        return self.ids[0]


class ReceiptRouter:
    """Turns part receipts into at most one final ``Receipt`` per message.

    A multi-part message is ``delivered`` once every part is, and not delivered as soon as
    one part fails; later receipts of its parts say nothing new and are dropped (settled groups
    stay known so a late "DELIVRD" of the first part cannot overturn a failure). Groups are
    kept in memory, bounded: after a restart (or eviction) receipts pass through under their
    own id, which for a non-first part matches no ledger row and is ignored there.
    """

    def __init__(self, max_parts: int = 200_000) -> None:
        self._by_part: OrderedDict[str, PartGroup] = OrderedDict()
        self._max_parts = max_parts

    def new_group(self, total: int) -> PartGroup:
        """A group for a message about to be sent in ``total`` parts."""
        return PartGroup(total)

    def add_part(self, group: PartGroup, message_id: str) -> None:
        """Remember an accepted part (called before its receipt can possibly arrive)."""
        group.ids.append(message_id)
        self._by_part[message_id] = group
        while len(self._by_part) > self._max_parts:
            self._by_part.popitem(last=False)

    def abandon(self, group: PartGroup) -> None:
        """The message failed part-way: its accepted parts' receipts must report nothing."""
        group.settled = True

    def route(self, event: ReceiptEvent) -> Receipt | None:
        """The final receipt ``event`` completes, if any."""
        if event.stat in NOT_FINAL:
            return None
        group = self._by_part.get(event.message_id)
        if group is None:
            return Receipt(event.message_id, delivered=event.stat == DELIVERED, detail=event.stat)
        if group.settled:
            return None
        if event.stat != DELIVERED:
            group.settled = True
            return Receipt(group.message_id, delivered=False, detail=event.stat)
        group.delivered.add(event.message_id)
        if len(group.delivered) < group.total:
            return None
        group.settled = True
        return Receipt(group.message_id, delivered=True, detail=DELIVERED)

    def reopen(self, event: ReceiptEvent) -> None:
        """Handing the receipt over failed; the SMSC will send this part's receipt again."""
        group = self._by_part.get(event.message_id)
        if group is not None:
            group.settled = False
            group.delivered.discard(event.message_id)


T = TypeVar("T")


class ReceiptPump(Generic[T]):
    """Runs ``handle`` on queued items from at most ``workers`` tasks, each draining the queue.

    A task per receipt cost more than the rest of the receipt's handling; under a stream of
    receipts a few long-lived tasks do the work, while a slow callback (a database) still
    gets ``workers`` receipts in flight at once.
    """

    def __init__(self, handle: Callable[[T], Awaitable[None]], workers: int = 8) -> None:
        self._handle = handle
        self._workers = workers
        self._items: deque[T] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    def put(self, item: T) -> None:
        """Queue ``item``; start a worker if fewer than ``workers`` run."""
        self._items.append(item)
        if len(self._tasks) < self._workers:
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def join(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the queue to be handled."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _drain(self) -> None:
        while self._items:
            await self._handle(self._items.popleft())  # ``handle`` must not raise
