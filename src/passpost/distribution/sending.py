"""Turn claimed ledger rows into channel messages, send them concurrently, report outcomes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

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
from passpost.channels.templates import render_email, render_sms
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.ledger import Outcome
from passpost.distribution.models import (
    Channel,
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassHolder,
)
from passpost.distribution.runtime import get_runtime
from passpost.distribution.schemas import IntegrationConfig, Notification

log = logging.getLogger(__name__)
M = TypeVar("M")
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


def personal_link(settings: Settings, holder: PassHolder) -> str:
    """The recipient's download link (the token is kept encrypted on the holder row)."""
    token = secrets.open_link_token(holder.link_token_enc)
    return f"{settings.public_base}/p/{token}"


def recipient_fields(recipient: Recipient) -> dict[str, str]:
    """The placeholder values of a recipient."""
    return {
        "First Name": recipient.first_name or "",
        "Last Name": recipient.last_name or "",
        "Email": recipient.email or "",
        "Mobile Number": recipient.mobile_number or "",
    }


def plan_batch(session: Session, *, deliveries: Sequence[Delivery], settings: Settings) -> Plan:
    """Build the messages of claimed deliveries, settling those that cannot be sent."""
    holders = _by_id(session, PassHolder, {d.holder_id for d in deliveries})
    requests = _by_id(session, DistributionRequest, {d.request_id for d in deliveries})
    recipient_ids = {h.recipient_id for h in holders.values() if h.recipient_id is not None}
    recipients = _by_id(session, Recipient, recipient_ids)
    configs = {
        rid: IntegrationConfig.model_validate_json(r.integration_config)
        for rid, r in requests.items()
    }
    smtp = channel_config.effective_smtp_config(session, settings)
    sms_url = channel_config.effective_sms_url(session, settings)
    sms_max_chars = channel_config.effective_sms_max_chars(session, settings)
    now = utcnow()
    sms_off = channel_config.sms_unavailable_reason(session, settings) if sms_url is None else ""
    plan = Plan([], [], [], {rid: r.end_at for rid, r in requests.items()}, smtp, sms_url, sms_off)
    for delivery in deliveries:
        holder = holders[delivery.holder_id]
        request = requests[delivery.request_id]
        recipient = recipients.get(holder.recipient_id) if holder.recipient_id else None
        notification = configs[request.id].enabled(holder.notification).get(delivery.channel)
        settled = _settle(delivery, request, recipient, notification, plan, now)
        if settled is not None:
            plan.settled.append(settled)
            continue
        assert recipient is not None and notification is not None
        link = personal_link(settings, holder)
        fields = recipient_fields(recipient)
        key = f"delivery-{delivery.id}"
        if delivery.channel == Channel.EMAIL:
            subject, html, text = render_email(
                notification.subject or "Your pass", notification.message_content, link, fields
            )
            plan.email.append(
                (
                    delivery.id,
                    EmailMessage(
                        key=key,
                        to=recipient.email or "",
                        subject=subject,
                        html=html,
                        text=text,
                        sender_email=notification.sender_email,
                        sender_name=notification.sender_name,
                    ),
                )
            )
        else:
            body = render_sms(notification.message_content, link, fields, sms_max_chars)
            plan.sms.append(
                (delivery.id, SmsMessage(key=key, to=recipient.mobile_number or "", text=body))
            )
    return plan


def _settle(
    delivery: Delivery,
    request: DistributionRequest,
    recipient: Recipient | None,
    notification: Notification | None,
    plan: Plan,
    now: datetime,
) -> Outcome | None:
    if request.end_at is not None and request.end_at < now:
        return Outcome(delivery.id, DeliveryState.UNDELIVERED, "expired: endTimeStamp passed")
    if recipient is None:
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


def _by_id(session: Session, model: type[M], wanted: set[int]) -> dict[int, M]:
    if not wanted:
        return {}
    column = model.id  # type: ignore[attr-defined]
    return {row.id: row for row in session.scalars(select(model).where(column.in_(wanted)))}  # type: ignore[attr-defined]


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
        delivery_id, DeliveryState.SUBMITTED, result.detail or None, result.provider_message_id
    )
