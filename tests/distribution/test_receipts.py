"""Delivery receipts in-process (SQLite and PostgreSQL): on time, early, late, unknown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passpost.channels.base import Receipt
from passpost.config import Settings
from passpost.db import session_scope, utcnow
from passpost.distribution import ledger, service
from passpost.distribution.ledger import Outcome
from passpost.distribution.models import Delivery, DeliveryState, EarlyReceipt
from tests.support.ledger import deliveries, import_request
from tests.support.passes import TestPki

PHONES = [{"mobileNumber": f"+1415555010{n}"} for n in range(3)]


def apply(settings: Settings, receipt: Receipt) -> bool:
    with session_scope(settings.resolved_database_url, write=True) as session:
        return service.apply_receipt(session, receipt)


def submit_all(settings: Settings, *, early_ids: list[str] | None = None) -> list[str]:
    """Send every queued delivery as the send task does; returns the provider message ids."""
    now = utcnow()
    with session_scope(settings.resolved_database_url, write=True) as session:
        [batch] = ledger.assign_batches(session, now=now, settings=settings, max_batches=1)
    with session_scope(settings.resolved_database_url, write=True) as session:
        rows = ledger.claim(session, batch_id=batch.id, now=now, settings=settings)
    message_ids = [f"smsc-{row.id}" for row in rows]
    with session_scope(settings.resolved_database_url, write=True) as session:
        ledger.record_outcomes(
            session,
            batch_id=batch.id,
            claimed={r.id: r for r in rows},
            outcomes=[
                Outcome(r.id, DeliveryState.SUBMITTED, None, m)
                for r, m in zip(rows, message_ids, strict=True)
            ],
            now=now,
            settings=settings,
            end_at={r.request_id: None for r in rows},
        )
        service.apply_early_receipts(session, message_ids if early_ids is None else early_ids)
    return message_ids


def states(settings: Settings) -> list[tuple[str, str | None]]:
    return [(d.state, d.last_error) for d in deliveries(settings)]


def parked(settings: Settings) -> list[str]:
    with session_scope(settings.resolved_database_url) as session:
        return sorted(session.scalars(select(EarlyReceipt.provider_message_id)))


def test_receipts_settle_submitted_deliveries(settings: Settings, pki: TestPki) -> None:
    import_request(settings, pki, PHONES[:2], sms=True, email=False)
    delivered, failed = submit_all(settings)
    assert apply(settings, Receipt(delivered, True)) is True
    assert apply(settings, Receipt(failed, False, "UNDELIV 001")) is True
    assert states(settings) == [
        (DeliveryState.DELIVERED, None),
        (DeliveryState.UNDELIVERED, "UNDELIV 001"),
    ]
    assert all(d.finished_at is not None for d in deliveries(settings))


def test_an_undelivered_receipt_without_detail_says_so(settings: Settings, pki: TestPki) -> None:
    import_request(settings, pki, PHONES[:1], sms=True, email=False)
    [message_id] = submit_all(settings)
    apply(settings, Receipt(message_id, False, ""))
    assert states(settings) == [
        (DeliveryState.UNDELIVERED, "provider reported the message undelivered")
    ]


def test_a_receipt_never_undoes_an_open(settings: Settings, pki: TestPki) -> None:
    import_request(settings, pki, PHONES[:1], sms=True, email=False)
    [message_id] = submit_all(settings)
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Delivery).values(state=DeliveryState.OPENED))
    assert apply(settings, Receipt(message_id, False, "late")) is True
    assert states(settings) == [(DeliveryState.OPENED, None)]


def test_an_early_receipt_waits_for_its_outcome(settings: Settings, pki: TestPki) -> None:
    """The SMSC answers before the batch recorded its outcomes: the receipt is parked."""
    import_request(settings, pki, PHONES[:2], sms=True, email=False)
    ids = [f"smsc-{d.id}" for d in deliveries(settings)]
    assert apply(settings, Receipt(ids[0], True)) is False
    assert apply(settings, Receipt(ids[0], True)) is False  # a repeat is parked once
    assert apply(settings, Receipt(ids[1], False, "EXPIRED")) is False
    assert parked(settings) == sorted(ids)
    assert {s for s, _ in states(settings)} == {DeliveryState.QUEUED}
    submit_all(settings)  # records the outcomes, then applies the parked receipts
    assert states(settings) == [
        (DeliveryState.DELIVERED, None),
        (DeliveryState.UNDELIVERED, "EXPIRED"),
    ]
    assert parked(settings) == []


def test_the_sweeper_applies_receipts_that_raced_the_outcome(
    settings: Settings, pki: TestPki
) -> None:
    import_request(settings, pki, PHONES[:1], sms=True, email=False)
    [delivery] = deliveries(settings)
    message_id = f"smsc-{delivery.id}"
    apply(settings, Receipt(message_id, True))
    # The send task applied early receipts for no ids (it committed before the receipt).
    submit_all(settings, early_ids=[])
    assert states(settings) == [(DeliveryState.SUBMITTED, None)]
    assert parked(settings) == [message_id]
    with session_scope(settings.resolved_database_url, write=True) as session:
        assert service.apply_early_receipts(session, None) == 1
    assert states(settings) == [(DeliveryState.DELIVERED, None)]
    assert parked(settings) == []


def test_receipts_for_unknown_messages_are_dropped_after_a_week(settings: Settings) -> None:
    apply(settings, Receipt("never-sent-old", True))
    apply(settings, Receipt("never-sent-new", True))
    with session_scope(settings.resolved_database_url) as session:
        session.execute(
            update(EarlyReceipt)
            .where(EarlyReceipt.provider_message_id == "never-sent-old")
            .values(received_at=utcnow() - timedelta(days=8))
        )
    with session_scope(settings.resolved_database_url, write=True) as session:
        assert service.apply_early_receipts(session, None) == 0
    assert parked(settings) == ["never-sent-new"]


@pytest.mark.parametrize("rows", [1000, 1])  # 1: one statement per receipt
def test_receipts_settled_in_a_group_follow_the_same_rules(
    settings: Settings, pki: TestPki, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's grouped write (``ledger.settle_receipts``) as ``apply_receipt`` one by one."""
    from passpost.distribution.runtime import _store_receipts

    monkeypatch.setattr(ledger, "_VALUES_ROWS", rows)

    import_request(settings, pki, PHONES, sms=True, email=False)
    delivered, failed, opened = submit_all(settings)
    with session_scope(settings.resolved_database_url) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.provider_message_id == opened)
            .values(state=DeliveryState.OPENED)
        )
    _store_receipts(
        [
            Receipt(delivered, True),
            Receipt(failed, False, ""),
            Receipt(failed, True),  # a second receipt for it: the first one settled it
            Receipt(opened, False, "late"),  # never undoes an open
            Receipt("smsc-unknown", True),  # parked until its send is recorded
        ]
    )
    assert states(settings) == [
        (DeliveryState.DELIVERED, None),
        (DeliveryState.UNDELIVERED, "provider reported the message undelivered"),
        (DeliveryState.OPENED, None),
    ]
    assert all(d.finished_at is not None for d in deliveries(settings)[:2])
    assert parked(settings) == ["smsc-unknown"]
