"""Read models of the status endpoints, in the original API's shapes (typos included)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session

from passpost import ids
from passpost.audience.models import Recipient
from passpost.config import Settings, get_settings
from passpost.db import utcnow
from passpost.distribution import content, expansion, personal, tally
from passpost.distribution.changes import install_counts
from passpost.distribution.jobs import request_jobs
from passpost.distribution.models import (
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassHolder,
    RequestExpansion,
    RequestTally,
    RequestTallyDelta,
)
from passpost.errors import BadRequest, NotFound
from passpost.passes.models import PassKind, PassVersion, WalletPass
from passpost.timestamps import iso


def parse_id(value: str, name: str) -> int:
    """A decimal id from the path, or a 400 naming it."""
    # isascii: str.isdigit() is also true for "¹" and other digits int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise BadRequest(f"{name} must be a positive decimal integer.", error_code="INVALID_ID")
    return int(value)


def _request(session: Session, request_id: int) -> DistributionRequest:
    request = session.get(DistributionRequest, request_id)
    if request is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    return request


def _latest_pass_json(session: Session, pass_id: int) -> tuple[WalletPass, dict[str, Any]]:
    wallet_pass = session.get(WalletPass, pass_id)
    if wallet_pass is None or wallet_pass.latest_version_id is None:
        raise NotFound("The pass no longer exists.", error_code="PASS_NOT_FOUND")
    raw = session.scalar(
        select(PassVersion.pass_json).where(PassVersion.id == wallet_pass.latest_version_id)
    )
    return wallet_pass, json.loads(raw or "{}")


def _entry(
    holder: PassHolder,
    wallet_pass: WalletPass,
    pass_json: dict[str, Any],
    request: DistributionRequest,
    built: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    # The pages show absent values as "" (never null) and passType as a constant.
    barcode = content.barcode_of(pass_json)
    serial = wallet_pass.serial_number
    if wallet_pass.kind == PassKind.TEMPLATE:
        # Each holder has its own pass: its serial, and its barcode once built (else the
        # template's filled with the holder's values). "" for a refused holder.
        serial = holder.serial_number or ""
        own = (built or {}).get(holder.personal_pass_id or 0)
        if own is not None:
            pass_json, barcode = own, content.barcode_of(own)
        else:
            barcode = dict(personal.preview_barcode(pass_json, holder) or {})
    return {
        "id": str(holder.id),
        "audienceId": holder.audience_id,
        "passType": content.pass_type_constant(pass_json),
        "serialNumber": serial,
        "passTypeIdentifier": wallet_pass.pass_type_identifier,
        "stopDateStr": iso(request.end_at) or "",
        "passExpiryDateStr": content.text(pass_json.get("expirationDate")),
        "barcodeMsg": content.text(barcode.get("message")),
        "barcodeAltMsg": content.text(barcode.get("altText")),
        "importPass": True,
    }


def _built(session: Session, holders: list[PassHolder]) -> dict[int, dict[str, Any]]:
    return personal.built_pass_json(
        session, [h.personal_pass_id for h in holders if h.personal_pass_id is not None]
    )


def request_meta(
    session: Session, request_id: int, *, start: int, page_size: int
) -> dict[str, Any]:
    """``{"total", "passRequests": [...]}``: one entry per recipient of the request."""
    request = _request(session, request_id)
    wallet_pass, pass_json = _latest_pass_json(session, request.pass_id)
    # From the tally: counting a million holders' index rows takes a while.
    total = tally.counts(session, [request_id])[request_id].get(tally.RECIPIENTS, {})
    holders = list(
        session.scalars(
            select(PassHolder)
            .where(PassHolder.request_id == request_id)
            .order_by(PassHolder.id)
            .offset(start)
            .limit(page_size)
        )
    )
    built = _built(session, holders)
    return {
        "total": total.get("recipients", 0),
        "passRequests": [_entry(h, wallet_pass, pass_json, request, built) for h in holders],
    }


def request_meta_one(session: Session, request_id: int, audience_id: str) -> dict[str, Any]:
    """``{"passRequests": {...}}``: the entry of one recipient of a request."""
    request = _request(session, request_id)
    holder = session.scalars(
        select(PassHolder).where(
            PassHolder.request_id == request_id, PassHolder.audience_id == audience_id
        )
    ).first()
    if holder is None:
        raise NotFound(
            f"Recipient {audience_id} is not part of request {request_id}.",
            error_code="RECIPIENT_NOT_IN_REQUEST",
        )
    wallet_pass, pass_json = _latest_pass_json(session, request.pass_id)
    entry = _entry(holder, wallet_pass, pass_json, request, _built(session, [holder]))
    return {"passRequests": entry}


def _holder(session: Session, holder_id: int) -> PassHolder:
    holder = session.get(PassHolder, holder_id)
    if holder is None:
        raise NotFound(f"No pass {holder_id}.", error_code="PASS_NOT_FOUND")
    return holder


def pass_status(session: Session, holder_id: int) -> dict[str, Any]:
    """``{"passStatusData": {...}}`` with one ``channelStatusList`` entry per channel."""
    holder = _holder(session, holder_id)
    wallet_pass, pass_json = _latest_pass_json(session, holder.pass_id)
    request = _request(session, holder.request_id)
    entry = _entry(holder, wallet_pass, pass_json, request, _built(session, [holder]))
    deliveries = session.scalars(
        select(Delivery).where(Delivery.holder_id == holder.id).order_by(Delivery.channel)
    )
    return {
        "passStatusData": {
            "id": str(holder.id),
            "passtypeIdentifier": wallet_pass.pass_type_identifier,
            "seriealNumber": entry["serialNumber"],
            "audienceId": holder.audience_id,
            "barcodeMessage": entry["barcodeMsg"],
            "passOpened": holder.opened_count,
            "channelStatusList": [
                {
                    "channelType": d.channel,
                    # The pages' two values: the channel refused the pass, or it went out.
                    "passStatus": "Rejected" if d.state == DeliveryState.REJECTED else "Submitted",
                    "channelStatus": d.state,
                    "reason": d.last_error,
                    "attempts": d.attempts,
                }
                for d in deliveries
            ],
        }
    }


def pass_content(
    session: Session, holder_id: int, *, settings: Settings | None = None
) -> dict[str, Any]:
    """``{"passContent": {...}}`` of the latest version of a recipient's pass.

    A personal pass not built yet is built now (its content is the holder's own).
    """
    holder = _holder(session, holder_id)
    wallet_pass, pass_json = _latest_pass_json(session, holder.pass_id)
    if wallet_pass.kind == PassKind.TEMPLATE:
        settings = settings or get_settings()
        pass_id, built_now = personal.personal_pass_id(session, settings=settings, holder=holder)
        if built_now:
            session.commit()  # built in its own transaction: see it
        wallet_pass, pass_json = _latest_pass_json(session, pass_id)
    return content.pass_content(pass_json, serial_number=wallet_pass.serial_number)


REQUEST_STATES = ("queued", "in progress", "done", "cancelled")
# "active" is what the console's "in flight" filter asks for: queued or in progress.
STATE_FILTERS = (*REQUEST_STATES, "active")


def _state_of(request: DistributionRequest, total: int, pending: int, expanding: bool) -> str:
    if request.cancelled_at is not None:
        return "cancelled"
    if pending == 0 and not expanding:
        return "done"
    return "in progress" if total - pending else "queued"


def _summary(
    request: DistributionRequest, counts: tally.Counts, listed: dict[str, Any] | None
) -> dict[str, Any]:
    channels = {ch: states for ch, states in counts.items() if ch != tally.RECIPIENTS}
    holders = counts.get(tally.RECIPIENTS, {})
    total = sum(sum(states.values()) for states in channels.values())
    pending = sum(
        n for states in channels.values() for st, n in states.items() if st in DeliveryState.PENDING
    )
    expanding = listed is not None and not listed["done"]
    progress = (total - pending) / total if total else (0.0 if expanding else 1.0)
    state = _state_of(request, total, pending, expanding)
    if expanding and listed is not None:
        # Only part of the list is in the ledger yet: progress is of the whole list, and
        # each entry not yet expanded is at least one delivery still to come (a client
        # polling for pending == 0 must not stop while the list is being expanded).
        progress *= listed["expanded"] / max(1, listed["total"])
        pending += max(1, listed["total"] - listed["expanded"])
    return {
        "requestId": str(request.id),
        "kind": request.kind,
        "state": state,
        "priority": request.priority,
        "recipients": holders.get("recipients", 0),
        "opened": holders.get("opened", 0),
        "deliveries": total,
        "pending": pending,
        "progress": round(progress, 4),
        # A list expanded by workers (more than one chunk): entries in the ledger so far.
        "expansion": listed,
        "channels": channels,
        "createdBy": request.created_by,
        "createdAt": iso(request.created_at),
        "startAt": iso(request.start_at),
        "endAt": iso(request.end_at),
        "cancelledAt": iso(request.cancelled_at),
    }


def summaries(session: Session, requests: list[DistributionRequest]) -> list[dict[str, Any]]:
    """The progress summary of each request (counts from the tally, never the ledger)."""
    counts = tally.counts(session, (r.id for r in requests))
    listed = expansion.progress(session, [r.id for r in requests])
    return [_summary(r, counts[r.id], listed.get(r.id)) for r in requests]


def _tally_exists(states: frozenset[str] | tuple[str, ...], *, among: bool) -> Any:
    # Folded counts plus the deltas not folded yet (PostgreSQL), summed by the reader: a
    # filtered listing never writes. Both sides are range reads on the request's key.
    rows = union_all(
        *(
            select(model.channel, model.state, model.n)
            .where(model.request_id == DistributionRequest.id)
            .correlate(DistributionRequest)
            for model in (RequestTally, RequestTallyDelta)
        )
    ).subquery()
    condition = rows.c.state.in_(states) if among else rows.c.state.not_in(states)
    return (
        select(rows.c.state)
        .where(rows.c.channel != tally.RECIPIENTS, condition)
        .group_by(rows.c.channel, rows.c.state)
        .having(func.sum(rows.c.n) > 0)
        .exists()
    )


def _state_condition(state: str) -> Any:
    if state not in STATE_FILTERS:
        raise BadRequest(
            f"state must be one of: {', '.join(STATE_FILTERS)}.", error_code="INVALID_STATE"
        )
    if state == "cancelled":
        return DistributionRequest.cancelled_at.is_not(None)
    expanding = (
        select(RequestExpansion.request_id)
        .where(
            RequestExpansion.request_id == DistributionRequest.id,
            RequestExpansion.finished_at.is_(None),
        )
        .exists()
    )
    pending = or_(_tally_exists(DeliveryState.PENDING, among=True), expanding)
    final = _tally_exists(DeliveryState.PENDING, among=False)
    live = DistributionRequest.cancelled_at.is_(None)
    return {
        "done": and_(live, ~pending),
        "active": and_(live, pending),
        "in progress": and_(live, pending, final),
        "queued": and_(live, pending, ~final),
    }[state]


def _id_at(moment: datetime) -> int:
    # Request ids are time-ordered (passpost.ids): a date range is an id range on the key.
    return min(max(0, int(moment.timestamp() * 1000) - ids.EPOCH_MS) << 22, 2**63 - 1)


def list_requests(
    session: Session,
    *,
    start: int,
    page_size: int,
    state: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> dict[str, Any]:
    """``{"total", "requests": [summary...]}``, newest first, optionally filtered."""
    conditions = []
    if state:
        conditions.append(_state_condition(state))
    if created_from is not None:
        conditions.append(DistributionRequest.id >= _id_at(created_from))
    if created_to is not None:
        conditions.append(DistributionRequest.id < _id_at(created_to))
    total = session.scalar(select(func.count()).select_from(DistributionRequest).where(*conditions))
    requests = list(
        session.scalars(
            select(DistributionRequest)
            .where(*conditions)
            .order_by(DistributionRequest.id.desc())
            .offset(start)
            .limit(page_size)
        )
    )
    return {"total": total or 0, "requests": summaries(session, requests)}


def _submitted_bound(request_id: int, *, last: bool) -> Any:
    # One seek on ix_delivery_request_submitted each (MIN/MAX of an index prefix).
    column = Delivery.submitted_at
    aggregate = func.max(column) if last else func.min(column)
    return select(aggregate).where(Delivery.request_id == request_id).scalar_subquery()


def _in_flight(request_id: int) -> Any:
    # Claimed by a worker and not yet recorded: the only sends a crash could duplicate.
    # Only rows leased now are read (ix_delivery_request_lease), however big the request.
    return (
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.request_id == request_id,
            Delivery.lease_until > utcnow(),
            Delivery.state == DeliveryState.QUEUED,
            Delivery.attempts > 0,
        )
        .scalar_subquery()
    )


def request_progress(session: Session, request_id: int) -> dict[str, Any]:
    """Totals per channel and state, progress and timings of a request.

    The request with its facts as subqueries (one statement), its tally (installs of
    personal passes included), a shared pass's install events and the change jobs: a
    status page pays for a few round trips to the database, not for the request's size.
    """
    row = session.execute(
        select(
            DistributionRequest,
            _in_flight(request_id),
            _submitted_bound(request_id, last=False),
            _submitted_bound(request_id, last=True),
            WalletPass.updatable,
            WalletPass.kind,
        )
        .join(WalletPass, WalletPass.id == DistributionRequest.pass_id)
        .where(DistributionRequest.id == request_id)
    ).first()
    if row is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    request, in_flight, first, last, pass_updatable, pass_kind = row
    counts = tally.counts(session, [request.id])[request.id]
    installs = install_counts(
        session,
        pass_id=request.pass_id,
        pass_kind=pass_kind,
        tallied=counts.get(tally.RECIPIENTS, {}),
    )
    return {
        **_summary(request, counts, expansion.progress(session, [request.id]).get(request.id)),
        "passUpdatable": bool(pass_updatable),
        "inFlight": in_flight or 0,
        "firstSubmittedAt": iso(first),
        "lastSubmittedAt": iso(last),
        "warnings": json.loads(request.validation_warnings or "[]"),
        # SPEC §13: registrations (installs) and unregistrations (removals) of its passes.
        **installs,
        "passChanges": request_jobs(session, request_id),
    }


def request_recipients(
    session: Session, request_id: int, *, after: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """One page of a request's recipients with each channel's state, reason and attempts.

    Keyset pagination on ``(request_id, id)``: any page of a 100,000-recipient request
    costs the same. ``after`` is the last ``id`` of the previous page.
    """
    # One statement: the page of holders (a keyset range), each with its recipient and its
    # deliveries (the unique (holder_id, channel) index).
    holders = (
        select(
            PassHolder.id, PassHolder.audience_id, PassHolder.opened_count, PassHolder.recipient_id
        )
        .where(PassHolder.request_id == request_id, PassHolder.id > after)
        .order_by(PassHolder.id)
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        select(
            holders.c.id,
            holders.c.audience_id,
            holders.c.opened_count,
            Recipient.first_name,
            Recipient.last_name,
            Recipient.email,
            Recipient.mobile_number,
            Delivery.channel,
            Delivery.state,
            Delivery.last_error,
            Delivery.attempts,
        )
        .select_from(holders)
        .outerjoin(Recipient, Recipient.id == holders.c.recipient_id)
        .outerjoin(Delivery, Delivery.holder_id == holders.c.id)
        .order_by(holders.c.id, Delivery.channel)
    )
    page: list[dict[str, Any]] = []
    for hid, audience_id, opened, first, last, email, mobile, channel, state, reason, tries in rows:
        if not page or page[-1]["id"] != str(hid):
            page.append(
                {
                    "id": str(hid),
                    "audienceId": audience_id,
                    "name": " ".join(filter(None, (first, last))) or None,
                    "email": email,
                    "mobileNumber": mobile,
                    "opened": opened,
                    "channels": [],
                }
            )
        if channel is not None:
            page[-1]["channels"].append(
                {"channel": channel, "state": state, "reason": reason, "attempts": tries}
            )
    return page
