"""Requests made in-process, as the import call makes them, and reads of their ledger rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from passpost.config import Settings
from passpost.db import session_scope
from passpost.distribution import service
from passpost.distribution.models import Delivery
from passpost.distribution.schemas import PassContent
from tests.support.passes import TestPki, signed_pass
from tests.support.service import email_content


def import_request(
    settings: Settings,
    pki: TestPki,
    recipients: list[dict[str, Any]],
    *,
    serial: str = "S1",
    sms: bool = False,
    email: bool = True,
    pass_fields: dict[str, Any] | None = None,
    **content: Any,
) -> service.ImportResult:
    """Import a signed pass for ``recipients`` by e-mail and/or SMS.

    ``pass_fields`` go into pass.json, other keywords into ``passContent``.
    """
    body = email_content(recipients, **content)
    sms_template, email_template = body["passIntegrationConfig"]["passIssueNotificationDetails"]
    sms_template["enabled"], email_template["enabled"] = sms, email
    with session_scope(settings.resolved_database_url, write=True) as session:
        return service.import_pass(
            session,
            settings=settings,
            upload=signed_pass(pki, serial=serial, **(pass_fields or {})),
            content=PassContent.model_validate(body),
            created_by="ops",
        )


def deliveries(settings: Settings, request_id: int | None = None) -> list[Delivery]:
    """The ledger rows (of one request), oldest first."""
    query = select(Delivery).order_by(Delivery.id)
    if request_id is not None:
        query = query.where(Delivery.request_id == request_id)
    with session_scope(settings.resolved_database_url) as session:
        return list(session.scalars(query))
