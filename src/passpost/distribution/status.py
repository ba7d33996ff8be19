"""Read models of the status endpoints, in the original API's shapes (typos included)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost.db import utcnow
from passpost.distribution.models import (
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassHolder,
    PassVersion,
    WalletPass,
)
from passpost.errors import BadRequest, NotFound

STYLES = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")


def parse_id(value: str, name: str) -> int:
    """A decimal id from the path, or a 400 naming it."""
    if not value.isdigit() or len(value) > 19:
        raise BadRequest(f"{name} must be a positive decimal integer.", error_code="INVALID_ID")
    return int(value)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


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


def _barcode(pass_json: dict[str, Any]) -> dict[str, Any]:
    barcodes = pass_json.get("barcodes")
    if isinstance(barcodes, list) and barcodes and isinstance(barcodes[0], dict):
        return barcodes[0]
    barcode = pass_json.get("barcode")
    return barcode if isinstance(barcode, dict) else {}


def _entry(
    holder: PassHolder,
    wallet_pass: WalletPass,
    pass_json: dict[str, Any],
    request: DistributionRequest,
) -> dict[str, Any]:
    barcode = _barcode(pass_json)
    return {
        "id": str(holder.id),
        "audienceId": holder.audience_id,
        "passType": next((s for s in STYLES if s in pass_json), None),
        "serialNumber": wallet_pass.serial_number,
        "passTypeIdentifier": wallet_pass.pass_type_identifier,
        "stopDateStr": _iso(request.end_at),
        "passExpiryDateStr": pass_json.get("expirationDate"),
        "barcodeMsg": barcode.get("message"),
        "barcodeAltMsg": barcode.get("altText"),
        "importPass": True,
    }


def request_meta(
    session: Session, request_id: int, *, start: int, page_size: int
) -> dict[str, Any]:
    """``{"total", "passRequests": [...]}``: one entry per recipient of the request."""
    request = _request(session, request_id)
    wallet_pass, pass_json = _latest_pass_json(session, request.pass_id)
    total = session.scalar(
        select(func.count()).select_from(PassHolder).where(PassHolder.request_id == request_id)
    )
    holders = session.scalars(
        select(PassHolder)
        .where(PassHolder.request_id == request_id)
        .order_by(PassHolder.id)
        .offset(start)
        .limit(page_size)
    )
    return {
        "total": total or 0,
        "passRequests": [_entry(h, wallet_pass, pass_json, request) for h in holders],
    }


def request_meta_one(session: Session, request_id: int, audience_id: str) -> dict[str, Any]:
    """The entry of one recipient of a request."""
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
    return _entry(holder, wallet_pass, pass_json, request)


def _holder(session: Session, holder_id: int) -> PassHolder:
    holder = session.get(PassHolder, holder_id)
    if holder is None:
        raise NotFound(f"No pass {holder_id}.", error_code="PASS_NOT_FOUND")
    return holder


def pass_status(session: Session, holder_id: int) -> dict[str, Any]:
    """``{"passStatusData": {...}}`` with one ``channelStatusList`` entry per channel."""
    holder = _holder(session, holder_id)
    request = _request(session, holder.request_id)
    wallet_pass, pass_json = _latest_pass_json(session, holder.pass_id)
    deliveries = session.scalars(
        select(Delivery).where(Delivery.holder_id == holder.id).order_by(Delivery.channel)
    )
    if request.cancelled_at is not None:
        pass_status_text = "Cancelled"
    elif holder.opened_count:
        pass_status_text = "Opened"
    else:
        pass_status_text = "Submitted"
    return {
        "passStatusData": {
            "id": str(holder.id),
            "passtypeIdentifier": wallet_pass.pass_type_identifier,
            "seriealNumber": wallet_pass.serial_number,
            "audienceId": holder.audience_id,
            "barcodeMessage": _barcode(pass_json).get("message"),
            "passOpened": holder.opened_count,
            "channelStatusList": [
                {
                    "channelType": d.channel,
                    "passStatus": pass_status_text,
                    "channelStatus": d.state,
                    "reason": d.last_error,
                    "attempts": d.attempts,
                }
                for d in deliveries
            ],
        }
    }


def pass_content(session: Session, holder_id: int) -> dict[str, Any]:
    """The pass.json of the latest version of a recipient's pass."""
    holder = _holder(session, holder_id)
    return _latest_pass_json(session, holder.pass_id)[1]


def _updatable(session: Session, pass_id: int) -> bool:
    return bool(session.scalar(select(WalletPass.updatable).where(WalletPass.id == pass_id)))


def request_progress(session: Session, request_id: int) -> dict[str, Any]:
    """Totals per channel and state, progress and timings of a request."""
    request = _request(session, request_id)
    rows = session.execute(
        select(
            Delivery.channel,
            Delivery.state,
            func.count(),
            func.min(Delivery.submitted_at),
            func.max(Delivery.submitted_at),
        )
        .where(Delivery.request_id == request_id)
        .group_by(Delivery.channel, Delivery.state)
    ).all()
    channels: dict[str, dict[str, int]] = {}
    total = pending = 0
    first: datetime | None = None
    last: datetime | None = None
    for channel, state, count, first_sent, last_sent in rows:
        channels.setdefault(channel, {})[state] = count
        total += count
        if state in DeliveryState.PENDING:
            pending += count
        first = min(filter(None, (first, first_sent)), default=None)
        last = max(filter(None, (last, last_sent)), default=None)
    recipients = (
        session.scalar(
            select(func.count()).select_from(PassHolder).where(PassHolder.request_id == request_id)
        )
        or 0
    )
    opened = (
        session.scalar(
            select(func.count())
            .select_from(PassHolder)
            .where(PassHolder.request_id == request_id, PassHolder.opened_count > 0)
        )
        or 0
    )
    # Claimed by a worker and not yet recorded: the only sends a crash could duplicate.
    in_flight = (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.request_id == request_id,
                Delivery.state == DeliveryState.QUEUED,
                Delivery.attempts > 0,
                Delivery.lease_until > utcnow(),
            )
        )
        or 0
    )
    if request.cancelled_at is not None:
        state_text = "cancelled"
    elif pending == 0:
        state_text = "done"
    else:
        state_text = "in progress" if total - pending else "queued"
    return {
        "requestId": str(request.id),
        "kind": request.kind,
        "state": state_text,
        "priority": request.priority,
        "passUpdatable": _updatable(session, request.pass_id),
        "recipients": recipients,
        "opened": opened,
        "deliveries": total,
        "pending": pending,
        "inFlight": in_flight,
        "progress": round((total - pending) / total, 4) if total else 1.0,
        "channels": channels,
        "createdAt": _iso(request.created_at),
        "startAt": _iso(request.start_at),
        "endAt": _iso(request.end_at),
        "cancelledAt": _iso(request.cancelled_at),
        "firstSubmittedAt": _iso(first),
        "lastSubmittedAt": _iso(last),
    }
