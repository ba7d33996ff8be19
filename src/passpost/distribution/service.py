"""Distribution: import a pass version and create the request with its ledger (SPEC §1–§3).

Plain functions; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from passpost import ids, pkpass, secrets
from passpost.audience.models import Recipient
from passpost.audience.service import match_or_create_recipient
from passpost.certs.service import prepare_pass
from passpost.channels.base import Receipt
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.models import (
    Channel,
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassHolder,
    PassVersion,
    WalletPass,
)
from passpost.distribution.schemas import IntegrationConfig, Notification, PassContent, RecipientRef
from passpost.errors import BadRequest, NotFound
from passpost.passkit.service import record_pass_update

_INSERT_CHUNK = 1000


@dataclass(frozen=True)
class ImportResult:
    request_id: int
    pass_id: int
    version: int
    updatable: bool


@lru_cache(maxsize=4)
def _anchors(path: str | None) -> tuple[x509.Certificate, ...] | None:
    return tuple(pkpass.load_certificates(Path(path))) if path else None


def validate_upload(data: bytes, *, settings: Settings) -> pkpass.Report:
    """Validate an uploaded .pkpass; the first error becomes a 400 with its errorCode."""
    anchors = _anchors(str(settings.trust_anchors) if settings.trust_anchors else None)
    try:
        report = pkpass.validate(data, policy=settings.signature_policy, trust_anchors=anchors)
    except pkpass.PkpassError as exc:
        raise BadRequest(f"Invalid pass: {exc.message}", error_code=exc.error_code) from exc
    if not report.ok or report.identity is None:
        first = report.errors[0]
        raise BadRequest(f"Invalid pass: {first.message}", error_code=first.error_code)
    return report


def import_pass(
    session: Session,
    *,
    settings: Settings,
    upload: bytes,
    content: PassContent,
    created_by: str,
    must_exist: bool = False,
) -> ImportResult:
    """Store a new pass version and create its request with one ledger row per delivery."""
    report = validate_upload(upload, settings=settings)
    identity = report.identity
    assert identity is not None
    wallet_pass = session.scalars(
        select(WalletPass)
        .where(
            WalletPass.pass_type_identifier == identity.pass_type_identifier,
            WalletPass.serial_number == identity.serial_number,
        )
        .with_for_update()
    ).one_or_none()
    if wallet_pass is None and must_exist:
        raise NotFound(
            f"No pass {identity.pass_type_identifier}/{identity.serial_number} to update.",
            error_code="PASS_NOT_FOUND",
        )
    previous_holders = _holder_recipient_ids(session, wallet_pass) if wallet_pass else set()
    prepared = prepare_pass(
        session, content=upload, report=report, existing=wallet_pass, settings=settings
    )
    now = utcnow()
    if wallet_pass is not None and not content.integration.update:
        content.integration.update = _previous_update_templates(session, wallet_pass)
    if wallet_pass is None:
        wallet_pass = WalletPass(
            id=ids.new_id(),
            pass_type_identifier=identity.pass_type_identifier,
            serial_number=identity.serial_number,
            team_identifier=identity.team_identifier,
            created_at=now,
        )
        session.add(wallet_pass)
    wallet_pass.authentication_token = prepared.authentication_token
    wallet_pass.updatable = prepared.updatable
    wallet_pass.voided = bool(prepared.pass_json.get("voided", False))
    wallet_pass.updated_at = now
    version = _add_version(session, wallet_pass, prepared.content, prepared.pass_json, now)
    record_pass_update(session, wallet_pass=wallet_pass, version=version)
    request = DistributionRequest(
        id=ids.new_id(),
        pass_id=wallet_pass.id,
        pass_version_id=version.id,
        kind="update" if previous_holders or must_exist else "issue",
        priority=content.priority,
        start_at=content.start_at,
        end_at=content.end_at,
        integration_config=content.integration.model_dump_json(by_alias=True),
        created_by=created_by,
        created_at=now,
    )
    session.add(request)
    session.flush()
    targets = _resolve_recipients(session, content.recipients.recipient, previous_holders)
    _create_ledger(session, request=request, content=content, targets=targets, now=now)
    return ImportResult(request.id, wallet_pass.id, version.version, prepared.updatable)


def _add_version(
    session: Session, wallet_pass: WalletPass, data: bytes, pass_json: dict[str, Any], now: datetime
) -> PassVersion:
    latest = session.scalar(
        select(func.max(PassVersion.version)).where(PassVersion.pass_id == wallet_pass.id)
    )
    version = PassVersion(
        id=ids.new_id(),
        pass_id=wallet_pass.id,
        version=(latest or 0) + 1,
        content=data,
        pass_json=json.dumps(pass_json, ensure_ascii=False),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        created_at=now,
    )
    session.add(version)
    session.flush()
    wallet_pass.latest_version_id = version.id
    return version


def _previous_update_templates(session: Session, wallet_pass: WalletPass) -> list[Notification]:
    """The update templates of the pass's latest request that had any (holders need one)."""
    configs = session.scalars(
        select(DistributionRequest.integration_config)
        .where(DistributionRequest.pass_id == wallet_pass.id)
        .order_by(DistributionRequest.id.desc())
    )
    for raw in configs:
        update_templates = IntegrationConfig.model_validate_json(raw).update
        if update_templates:
            return update_templates
    return []


def _holder_recipient_ids(session: Session, wallet_pass: WalletPass) -> set[int]:
    rows = session.scalars(
        select(PassHolder.recipient_id)
        .where(PassHolder.pass_id == wallet_pass.id, PassHolder.recipient_id.is_not(None))
        .distinct()
    )
    return {r for r in rows if r is not None}


@dataclass(frozen=True)
class _Target:
    audience_id: str
    recipient: Recipient | None
    notification: str  # "issue" | "update"


def _resolve_recipients(
    session: Session, refs: Sequence[RecipientRef], previous_holders: set[int]
) -> list[_Target]:
    """The request's recipients (deduplicated), then every earlier holder not among them."""
    by_id = _recipients_by_id(session, refs)
    targets: list[_Target] = []
    seen: set[int] = set()
    for ref in refs:
        recipient = _recipient_for(session, ref, by_id)
        if recipient is not None:
            if recipient.id in seen:
                continue
            seen.add(recipient.id)
        audience_id = str(recipient.id) if recipient is not None else (ref.id or "")
        kind = "update" if recipient is not None and recipient.id in previous_holders else "issue"
        targets.append(_Target(audience_id, recipient, kind))
    missing = sorted(previous_holders - seen)
    for chunk in _chunks(missing, _INSERT_CHUNK):
        for recipient in session.scalars(select(Recipient).where(Recipient.id.in_(chunk))):
            targets.append(_Target(str(recipient.id), recipient, "update"))
    return targets


def _recipients_by_id(session: Session, refs: Sequence[RecipientRef]) -> dict[int, Recipient]:
    wanted = sorted({int(r.id) for r in refs if r.id and r.id.isdigit() and len(r.id) < 19})
    found: dict[int, Recipient] = {}
    for chunk in _chunks(wanted, _INSERT_CHUNK):
        found.update(
            (r.id, r) for r in session.scalars(select(Recipient).where(Recipient.id.in_(chunk)))
        )
    return found


def _recipient_for(
    session: Session, ref: RecipientRef, by_id: dict[int, Recipient]
) -> Recipient | None:
    if ref.id:
        return by_id.get(int(ref.id)) if ref.id.isdigit() and len(ref.id) < 19 else None
    try:
        return match_or_create_recipient(
            session,
            email=ref.email,
            mobile_number=ref.mobile_number,
            first_name=ref.first_name,
            last_name=ref.last_name,
        )
    except BadRequest:
        return None


def _create_ledger(
    session: Session,
    *,
    request: DistributionRequest,
    content: PassContent,
    targets: Sequence[_Target],
    now: datetime,
) -> None:
    """Insert holders and deliveries in chunks (constant memory for large requests)."""
    channels = {
        "issue": content.integration.enabled("issue"),
        "update": content.integration.enabled("update"),
    }
    for chunk in _chunks(list(targets), _INSERT_CHUNK):
        holders: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for target in chunk:
            holder_id = ids.new_id()
            token = secrets.new_token()
            holders.append(
                {
                    "id": holder_id,
                    "request_id": request.id,
                    "pass_id": request.pass_id,
                    "recipient_id": target.recipient.id if target.recipient else None,
                    "audience_id": target.audience_id[:64],
                    "notification": target.notification,
                    "link_hash": secrets.token_hash(token),
                    "link_token_enc": secrets.encrypt(token),
                    "opened_count": 0,
                    "created_at": now,
                }
            )
            for channel in channels[target.notification]:
                state, reason = initial_state(target.recipient, channel)
                deliveries.append(
                    {
                        "id": ids.new_id(),
                        "request_id": request.id,
                        "holder_id": holder_id,
                        "channel": channel,
                        "state": state,
                        "priority": request.priority,
                        "attempts": 0,
                        "next_attempt_at": request.start_at,
                        "last_error": reason,
                        "finished_at": None if state == DeliveryState.QUEUED else now,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        session.execute(insert(PassHolder), holders)
        if deliveries:
            session.execute(insert(Delivery), deliveries)


def initial_state(recipient: Recipient | None, channel: str) -> tuple[str, str | None]:
    """The state a delivery starts in, with the reason when it will not be sent."""
    if recipient is None:
        return DeliveryState.REJECTED, "unknown recipient"
    if channel == Channel.EMAIL:
        if not recipient.email_subscription:
            return DeliveryState.NOT_ATTEMPTED, "recipient has not opted in to e-mail"
        if not recipient.email:
            return DeliveryState.NOT_ATTEMPTED, "recipient has no e-mail address"
    else:
        if not recipient.sms_subscription:
            return DeliveryState.NOT_ATTEMPTED, "recipient has not opted in to SMS"
        if not recipient.mobile_number:
            return DeliveryState.NOT_ATTEMPTED, "recipient has no mobile number"
    return DeliveryState.QUEUED, None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def cancel_request(session: Session, request_id: int) -> None:
    """Cancel a request: everything not yet submitted becomes ``cancelled``."""
    request = session.get(DistributionRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    now = utcnow()
    if request.cancelled_at is None:
        request.cancelled_at = now
    session.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.state.in_(DeliveryState.PENDING))
        .values(state=DeliveryState.CANCELLED, finished_at=now, batch_id=None, updated_at=now)
    )


def apply_receipt(session: Session, receipt: Receipt) -> bool:
    """Record a provider's delivery receipt on the delivery it names; False if none does."""
    delivery = session.scalars(
        select(Delivery).where(Delivery.provider_message_id == receipt.provider_message_id)
    ).first()
    if delivery is None:
        return False
    if delivery.state in (DeliveryState.SUBMITTED, DeliveryState.QUEUED):
        delivery.state = DeliveryState.DELIVERED if receipt.delivered else DeliveryState.UNDELIVERED
        delivery.finished_at = utcnow()
        if not receipt.delivered:
            delivery.last_error = receipt.detail or "provider reported the message undelivered"
    return True
