"""Turn claimed ledger rows into channel messages, send them concurrently, report outcomes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost import secrets
from passpost.audience.models import Recipient
from passpost.channels import service as channel_config
from passpost.channels.base import (
    ChannelError,
    EmailMessage,
    EmailSender,
    PermanentError,
    SendResult,
    SmsMessage,
    SmsProvider,
)
from passpost.channels.email import SmtpConfig
from passpost.channels.templates import RecipientFields, render_email_fast, render_sms_fast
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.ledger import Claimed, Outcome
from passpost.distribution.models import (
    Channel,
    DeliveryState,
    DistributionRequest,
    PassHolder,
)
from passpost.distribution.runtime import get_runtime
from passpost.distribution.schemas import IntegrationConfig, Notification

log = logging.getLogger(__name__)
RETRY = "retry"


@dataclass(frozen=True)
class Plan:
    """What one batch will send, decided inside the claiming transaction."""

    email: list[tuple[int, EmailMessage]]
    sms: list[tuple[int, SmsMessage]]
    settled: list[Outcome]  # decided without sending (expired, channel off, no template)
    end_at: dict[int, datetime | None]
    smtp: SmtpConfig | None
    sms_url: str | None
    sms_off_reason: str = ""  # why sms_url is None


def personal_link(settings: Settings, holder: PassHolder | _Target) -> str:
    """The recipient's download link (the token is kept encrypted on the holder row)."""
    token = secrets.open_link_token(holder.link_token_enc)
    return f"{settings.public_base}/p/{token}"


def recipient_fields(recipient: Recipient | _Target) -> RecipientFields:
    """The placeholder values of a recipient."""
    return RecipientFields(
        first_name=recipient.first_name or "",
        last_name=recipient.last_name or "",
        email=recipient.email or "",
        mobile_number=recipient.mobile_number or "",
    )


@dataclass(frozen=True)
class _Request:
    id: int
    end_at: datetime | None
    config: IntegrationConfig


@dataclass(frozen=True)
class _Target:
    """A delivery's holder and recipient, as one joined row (``recipient_id`` None: gone)."""

    holder_id: int
    notification: str
    link_token_enc: str
    recipient_id: int | None
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile_number: str | None


def _targets(session: Session, holder_ids: set[int]) -> dict[int, _Target]:
    """Holders joined with their recipients, in one Core query (no ORM objects)."""
    holder, recipient = PassHolder.__table__, Recipient.__table__
    query = (
        select(
            holder.c.id,
            holder.c.notification,
            holder.c.link_token_enc,
            recipient.c.id,
            recipient.c.first_name,
            recipient.c.last_name,
            recipient.c.email,
            recipient.c.mobile_number,
        )
        .select_from(holder)
        .outerjoin(recipient, recipient.c.id == holder.c.recipient_id)
        .where(holder.c.id.in_(holder_ids))
    )
    return {row[0]: _Target(*row) for row in session.connection().execute(query)}


def _requests(session: Session, request_ids: set[int]) -> dict[int, _Request]:
    rows = session.execute(
        select(
            DistributionRequest.id,
            DistributionRequest.end_at,
            DistributionRequest.integration_config,
        ).where(DistributionRequest.id.in_(request_ids))
    )
    return {
        rid: _Request(rid, end_at, IntegrationConfig.model_validate_json(config))
        for rid, end_at, config in rows
    }


def plan_batch(session: Session, *, deliveries: Sequence[Claimed], settings: Settings) -> Plan:
    """Build the messages of claimed deliveries, settling those that cannot be sent."""
    targets = _targets(session, {d.holder_id for d in deliveries})
    requests = _requests(session, {d.request_id for d in deliveries})
    smtp = channel_config.effective_smtp_config(session, settings)
    sms_url = channel_config.effective_sms_url(session, settings)
    sms_max_chars = channel_config.effective_sms_max_chars(session, settings)
    now = utcnow()
    sms_off = channel_config.sms_unavailable_reason(session, settings) if sms_url is None else ""
    plan = Plan([], [], [], {rid: r.end_at for rid, r in requests.items()}, smtp, sms_url, sms_off)
    enabled: dict[tuple[int, str], dict[str, Notification]] = {}
    for delivery in deliveries:
        target = targets[delivery.holder_id]
        request = requests[delivery.request_id]
        kind = (request.id, target.notification)
        if kind not in enabled:
            enabled[kind] = request.config.enabled(target.notification)
        notification = enabled[kind].get(delivery.channel)
        settled = _settle(delivery, request, target, notification, plan, now)
        if settled is not None:
            plan.settled.append(settled)
            continue
        assert notification is not None
        link = personal_link(settings, target)
        fields = recipient_fields(target)
        key = f"delivery-{delivery.id}"
        if delivery.channel == Channel.EMAIL:
            subject, html, text = render_email_fast(
                notification.subject or "Your pass", notification.message_content, link, fields
            )
            plan.email.append(
                (
                    delivery.id,
                    EmailMessage(
                        key=key,
                        to=target.email or "",
                        subject=subject,
                        html=html,
                        text=text,
                        sender_email=notification.sender_email,
                        sender_name=notification.sender_name,
                    ),
                )
            )
        else:
            body = render_sms_fast(notification.message_content, link, fields, sms_max_chars)
            plan.sms.append(
                (delivery.id, SmsMessage(key=key, to=target.mobile_number or "", text=body))
            )
    return plan


def _settle(
    delivery: Claimed,
    request: _Request,
    target: _Target,
    notification: Notification | None,
    plan: Plan,
    now: datetime,
) -> Outcome | None:
    if request.end_at is not None and request.end_at < now:
        return Outcome(delivery.id, DeliveryState.UNDELIVERED, "expired: endTimeStamp passed")
    if target.recipient_id is None:
        return Outcome(delivery.id, DeliveryState.REJECTED, "unknown recipient")
    if notification is None:
        return Outcome(
            delivery.id, DeliveryState.NOT_ATTEMPTED, "no enabled template for this channel"
        )
    if delivery.channel == Channel.EMAIL and plan.smtp is None:
        return Outcome(
            delivery.id,
            DeliveryState.NOT_ATTEMPTED,
            "e-mail channel is not configured (PASSPOST_SMTP_URL or /api/v1/mailconfig)",
        )
    if delivery.channel == Channel.SMS and plan.sms_url is None:
        return Outcome(delivery.id, DeliveryState.NOT_ATTEMPTED, plan.sms_off_reason)
    return None


def execute_plan(plan: Plan, *, heartbeat: Callable[[], None], every: float) -> list[Outcome]:
    """Send every message of a plan concurrently on the channel runtime.

    ``heartbeat`` is called every ``every`` seconds while the sends run (it renews the lease,
    so a slow batch is not taken for a dead worker's).
    """
    if not plan.email and not plan.sms:
        return list(plan.settled)
    runtime = get_runtime()
    email = runtime.email(plan.smtp) if plan.email else None
    sms = runtime.sms(plan.sms_url) if plan.sms else None
    future = runtime.submit(_send_all(plan, email, sms))
    while True:
        try:
            sent = future.result(timeout=every)
            break
        except concurrent.futures.TimeoutError:
            heartbeat()
    return list(plan.settled) + sent


async def _send_all(
    plan: Plan, email: EmailSender | None, sms: SmsProvider | None
) -> list[Outcome]:
    calls = [_one(delivery_id, email.send(message)) for delivery_id, message in plan.email if email]
    calls += [_one(delivery_id, sms.send(message)) for delivery_id, message in plan.sms if sms]
    return list(await asyncio.gather(*calls))


async def _one(delivery_id: int, send: asyncio.Future[SendResult] | object) -> Outcome:
    try:
        result: SendResult = await send  # type: ignore[misc]
    except PermanentError as exc:
        return Outcome(delivery_id, DeliveryState.REJECTED, exc.reason)
    except ChannelError as exc:
        return Outcome(delivery_id, RETRY, exc.reason)
    except Exception as exc:
        log.exception("delivery %s: send failed unexpectedly: %r", delivery_id, exc)
        return Outcome(delivery_id, RETRY, f"internal error: {exc!r}")
    return Outcome(
        delivery_id,
        DeliveryState.SUBMITTED,
        result.detail or None,
        result.provider_message_id,
        at=utcnow(),
    )
