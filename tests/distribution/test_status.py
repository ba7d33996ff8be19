"""The status read models in-process (SQLite and PostgreSQL): meta, pass status, progress."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passpost.config import Settings
from passpost.db import session_scope, utcnow
from passpost.distribution import ledger, service, status
from passpost.distribution.ledger import Outcome
from passpost.distribution.models import Delivery, DeliveryState, PassHolder
from passpost.errors import BadRequest, NotFound
from tests.support.ledger import deliveries, import_request
from tests.support.passes import TestPki

ADA = {"email": "ada@example.com", "mobileNumber": "+14155550100", "firstName": "Ada"}
BOB = {"email": "bob@example.com"}


def read(settings: Settings, fn: object, *args: object, **kwargs: object) -> dict:
    with session_scope(settings.resolved_database_url) as session:
        return fn(session, *args, **kwargs)  # type: ignore[operator]


def holders(settings: Settings, request_id: int) -> list[PassHolder]:
    with session_scope(settings.resolved_database_url) as session:
        query = select(PassHolder).where(PassHolder.request_id == request_id)
        return list(session.scalars(query.order_by(PassHolder.id)))


def send_all(settings: Settings, outcome: str, detail: str | None = None) -> None:
    """Claim every due delivery and record ``outcome`` for each, as a worker would."""
    now = utcnow()
    with session_scope(settings.resolved_database_url, write=True) as session:
        batches = ledger.assign_batches(session, now=now, settings=settings, max_batches=10)
    for batch in batches:
        with session_scope(settings.resolved_database_url, write=True) as session:
            rows = ledger.claim(session, batch_id=batch.id, now=now, settings=settings)
            ledger.record_outcomes(
                session,
                batch_id=batch.id,
                claimed={r.id: r for r in rows},
                outcomes=[Outcome(r.id, outcome, detail, f"m-{r.id}") for r in rows],
                now=now,
                settings=settings,
                end_at={r.request_id: None for r in rows},
            )


def test_request_meta_lists_each_recipient_with_the_pass_fields(
    settings: Settings, pki: TestPki
) -> None:
    end = utcnow().replace(microsecond=0) + timedelta(days=2)
    result = import_request(
        settings, pki, [ADA, BOB, {"id": "999999"}], endTimeStamp=int(end.timestamp())
    )
    meta = read(settings, status.request_meta, result.request_id, start=0, page_size=2)
    assert meta["total"] == 3
    first, second = meta["passRequests"]
    assert first["passType"] == "GENERIC"
    assert (first["serialNumber"], first["passTypeIdentifier"]) == (
        "S1",
        "pass.dev.passpost.test",
    )
    assert (first["barcodeMsg"], first["barcodeAltMsg"]) == ("code-S1", "S1")
    assert first["stopDateStr"] == end.isoformat().replace("+00:00", "Z")
    assert first["importPass"] is True
    rest = read(settings, status.request_meta, result.request_id, start=2, page_size=2)
    assert [e["audienceId"] for e in rest["passRequests"]] == ["999999"]
    ids = [first["id"], second["id"], rest["passRequests"][0]["id"]]
    assert ids == [str(h.id) for h in holders(settings, result.request_id)]
    one = read(settings, status.request_meta_one, result.request_id, "999999")
    assert one == {"passRequests": rest["passRequests"][0]}


def test_unknown_ids_are_not_found_and_bad_ids_bad_requests(
    settings: Settings, pki: TestPki
) -> None:
    result = import_request(settings, pki, [BOB])
    calls = [
        (status.request_meta, (12345,), {"start": 0, "page_size": 10}, "REQUEST_NOT_FOUND"),
        (status.request_meta_one, (result.request_id, "42"), {}, "RECIPIENT_NOT_IN_REQUEST"),
        (status.pass_status, (12345,), {}, "PASS_NOT_FOUND"),
        (status.pass_content, (12345,), {}, "PASS_NOT_FOUND"),
        (status.request_progress, (12345,), {}, "REQUEST_NOT_FOUND"),
    ]
    for fn, args, kwargs, code in calls:
        with pytest.raises(NotFound) as caught:
            read(settings, fn, *args, **kwargs)
        assert caught.value.error_code == code
    for bad in ("", "-1", "1.5", "abc", "1" * 20):
        with pytest.raises(BadRequest) as bad_request:
            status.parse_id(bad, "requestId")
        assert bad_request.value.error_code == "INVALID_ID"
    assert status.parse_id("0042", "requestId") == 42


def test_pass_status_follows_the_ledger(settings: Settings, pki: TestPki) -> None:
    result = import_request(settings, pki, [ADA], sms=True)
    [holder] = holders(settings, result.request_id)
    before = read(settings, status.pass_status, holder.id)["passStatusData"]
    assert before["seriealNumber"] == "S1" and before["barcodeMessage"] == "code-S1"
    assert before["passOpened"] == 0
    assert [(c["channelType"], c["channelStatus"], c["passStatus"], c["attempts"]) for c in
            before["channelStatusList"]] == [
        ("EMAIL", "queued", "Submitted", 0),
        ("SMS", "queued", "Submitted", 0),
    ]  # fmt: skip
    send_all(settings, "retry", "451 greylisted")
    retried = read(settings, status.pass_status, holder.id)["passStatusData"]
    assert {(c["channelStatus"], c["reason"], c["attempts"]) for c in
            retried["channelStatusList"]} == {("queued", "451 greylisted", 1)}  # fmt: skip
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(PassHolder).where(PassHolder.id == holder.id).values(opened_count=2))
    assert read(settings, status.pass_status, holder.id)["passStatusData"]["passOpened"] == 2
    with session_scope(settings.resolved_database_url, write=True) as session:
        service.cancel_request(session, result.request_id)
    cancelled = read(settings, status.pass_status, holder.id)["passStatusData"]
    assert {c["channelStatus"] for c in cancelled["channelStatusList"]} == {"cancelled"}


def test_a_rejected_channel_is_a_rejected_pass_status(settings: Settings, pki: TestPki) -> None:
    result = import_request(settings, pki, [{"id": "424242"}])
    [holder] = holders(settings, result.request_id)
    data = read(settings, status.pass_status, holder.id)["passStatusData"]
    channels = data["channelStatusList"]
    assert [(c["passStatus"], c["channelStatus"], c["reason"]) for c in channels] == [
        ("Rejected", "rejected", "unknown recipient")
    ]


def test_pass_content_is_the_latest_versions_pass_json(settings: Settings, pki: TestPki) -> None:
    first = import_request(settings, pki, [ADA])
    [holder] = holders(settings, first.request_id)

    def description() -> str:
        body = read(settings, status.pass_content, holder.id)["passContent"]
        return str(body["basicDetails"]["description"])

    assert description() == "Test pass"
    import_request(settings, pki, [BOB], pass_fields={"description": "Second version"})
    assert description() == "Second version"


def test_progress_from_queued_to_done(settings: Settings, pki: TestPki) -> None:
    result = import_request(settings, pki, [ADA, BOB, {"id": "777"}], sms=True)
    progress = read(settings, status.request_progress, result.request_id)
    assert progress["state"] == "in progress"  # the unknown id's deliveries are final at once
    assert progress["kind"] == "issue"
    assert (progress["recipients"], progress["deliveries"]) == (3, 6)
    # The unknown id is rejected at once (both channels); BOB (no phone) gets no SMS.
    assert progress["channels"] == {
        "EMAIL": {"queued": 2, "rejected": 1},
        "SMS": {"queued": 1, "not attempted": 1, "rejected": 1},
    }
    assert (progress["pending"], progress["progress"]) == (3, 0.5)
    assert progress["firstSubmittedAt"] is None and progress["inFlight"] == 0

    now = utcnow()
    with session_scope(settings.resolved_database_url, write=True) as session:
        [batch] = ledger.assign_batches(session, now=now, settings=settings, max_batches=1)
    with session_scope(settings.resolved_database_url, write=True) as session:
        ledger.claim(session, batch_id=batch.id, now=now, settings=settings)
    assert read(settings, status.request_progress, result.request_id)["inFlight"] == 3

    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Delivery).where(Delivery.state == "queued").values(lease_until=None))
    send_all(settings, DeliveryState.SUBMITTED)
    done = read(settings, status.request_progress, result.request_id)
    assert done["state"] == "done" and done["pending"] == 0 and done["progress"] == 1.0
    assert done["channels"]["EMAIL"] == {"submitted": 2, "rejected": 1}
    assert done["channels"]["SMS"] == {"submitted": 1, "not attempted": 1, "rejected": 1}
    submitted = [r.submitted_at for r in deliveries(settings) if r.submitted_at]
    assert done["firstSubmittedAt"] == min(submitted).isoformat().replace("+00:00", "Z")
    assert done["lastSubmittedAt"] == max(submitted).isoformat().replace("+00:00", "Z")


def test_progress_of_a_cancelled_request(settings: Settings, pki: TestPki) -> None:
    result = import_request(settings, pki, [ADA, BOB])
    assert read(settings, status.request_progress, result.request_id)["state"] == "queued"
    with session_scope(settings.resolved_database_url, write=True) as session:
        service.cancel_request(session, result.request_id)
    progress = read(settings, status.request_progress, result.request_id)
    assert progress["state"] == "cancelled"
    assert progress["channels"] == {"EMAIL": {"cancelled": 2}}
    assert progress["cancelledAt"] is not None
