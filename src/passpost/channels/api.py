"""Channel configuration: ``/api/v1/mailconfig`` and ``/api/v1/smsconfig``.

The SMS receipt webhooks record ledger states: they live in ``passpost.distribution.receipts``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from passpost.auth.deps import OperatorDep
from passpost.channels import service, smsconfig
from passpost.channels.schemas import MailConfigIn, SavedResponse, SmsConfigIn
from passpost.deps import SessionDep, SettingsDep
from passpost.errors import NotFound

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])


@router.get("/api/v1/mailconfig")
def get_mail_config(_: OperatorDep, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The e-mail configuration in force (stored, else from the environment); no password."""
    return service.mail_config_view(session, settings)


@router.post("/api/v1/mailconfig")
def save_mail_config(
    operator: OperatorDep, session: SessionDep, body: MailConfigIn
) -> SavedResponse:
    """Store the e-mail configuration; it overrides ``PASSPOST_SMTP_URL`` from now on."""
    row = service.save_mail_config(session, data=body, updated_by=operator.name)
    return SavedResponse(id=str(row.id), message="Mail Configuration saved successfully")


@router.delete("/api/v1/mailconfig")
def delete_mail_config(operator: OperatorDep, session: SessionDep) -> SavedResponse:
    """Forget the stored e-mail configuration: ``PASSPOST_SMTP_URL`` applies again."""
    if not service.delete_config(session, channel=service.EMAIL):
        raise NotFound("No stored mail configuration.", error_code="MAIL_CONFIG_NOT_FOUND")
    return SavedResponse(id="", message="Mail Configuration deleted successfully")


@router.get("/api/v1/smsconfig")
def get_sms_config(_: OperatorDep, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The SMS configuration in force (stored, else from the environment); secrets masked."""
    return service.sms_config_view(session, settings)


@router.post("/api/v1/smsconfig")
def save_sms_config(
    operator: OperatorDep, session: SessionDep, settings: SettingsDep, body: SmsConfigIn
) -> dict[str, str]:
    """Store the SMS configuration; it overrides ``PASSPOST_SMS_URL`` from now on.

    CLICKATELL and SALESFORCE are stored as the original accepts them, but passpost cannot
    send through them: the answer says so in ``warning``.
    """
    row = service.save_sms_config(
        session, data=body, data_dir=settings.data_dir, updated_by=operator.name
    )
    answer = {"id": str(row.id), "message": "Details updated successfully"}
    warning = smsconfig.unsendable_reason(str(row.properties.get("kind")))
    return {**answer, "warning": warning} if warning else answer


@router.delete("/api/v1/smsconfig")
def delete_sms_config(operator: OperatorDep, session: SessionDep) -> SavedResponse:
    """Forget the stored SMS configuration: ``PASSPOST_SMS_URL`` applies again."""
    if not service.delete_config(session, channel=service.SMS):
        raise NotFound("No stored SMS configuration.", error_code="SMS_CONFIG_NOT_FOUND")
    return SavedResponse(id="", message="Details deleted successfully")
