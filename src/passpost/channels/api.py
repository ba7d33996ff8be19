"""Channel configuration (``/api/v1/mailconfig``, ``/api/v1/smsconfig``), SMS receipt webhooks."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost import jsontext
from passpost.auth.deps import OperatorDep
from passpost.channels import service
from passpost.channels.base import Receipt
from passpost.channels.schemas import MailConfigIn, SavedResponse, SmsConfigIn
from passpost.channels.sms import provider_scheme
from passpost.channels.sms.twilio import (
    RECEIPT_PATH as TWILIO_PATH,
)
from passpost.channels.sms.twilio import (
    TwilioConfig,
    parse_status_callback,
    validate_twilio_signature,
)
from passpost.channels.sms.vonage import VonageConfig, check_receipt_auth, parse_delivery_receipt
from passpost.config import Settings
from passpost.errors import Forbidden, NotFound
from passpost.web.deps import SessionDep, SettingsDep

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
) -> SavedResponse:
    """Store the SMS configuration; it overrides ``PASSPOST_SMS_URL`` from now on."""
    row = service.save_sms_config(
        session, data=body, data_dir=settings.data_dir, updated_by=operator.name
    )
    return SavedResponse(id=str(row.id), message="Details updated successfully")


@router.delete("/api/v1/smsconfig")
def delete_sms_config(operator: OperatorDep, session: SessionDep) -> SavedResponse:
    """Forget the stored SMS configuration: ``PASSPOST_SMS_URL`` applies again."""
    if not service.delete_config(session, channel=service.SMS):
        raise NotFound("No stored SMS configuration.", error_code="SMS_CONFIG_NOT_FOUND")
    return SavedResponse(id="", message="Details deleted successfully")


def _sms_url_for(session: Session, settings: Settings, scheme: str) -> str:
    url = service.effective_sms_url(session, settings)
    if url is None or provider_scheme(url) != scheme:
        raise NotFound(
            f"SMS receipts for {scheme} are not expected: that provider is not configured.",
            error_code="SMS_RECEIPTS_NOT_CONFIGURED",
        )
    return url


def _apply(session: Session, receipt: Receipt | None) -> dict[str, Any]:
    if receipt is None:
        return {"received": True, "final": False}
    # Imported here: distribution imports channels, not the other way round at import time.
    from passpost.distribution.service import apply_receipt

    found = apply_receipt(session, receipt)
    if not found:
        log.warning("SMS receipt for unknown message id %s", receipt.provider_message_id)
    return {"received": True, "final": True, "matched": found}


@router.post(TWILIO_PATH, include_in_schema=False)
async def twilio_status_callback(
    request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Twilio's status callback: ``X-Twilio-Signature`` checked, final states recorded."""
    # Database work runs in the thread pool: the session is synchronous.
    url = await run_in_threadpool(_sms_url_for, session, settings, "twilio")
    config = TwilioConfig.from_url(url)
    form = await request.form()
    params = [(key, str(value)) for key, value in form.multi_items()]
    query = f"?{request.url.query}" if request.url.query else ""
    candidates = [settings.public_base + TWILIO_PATH + query, str(request.url)]
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validate_twilio_signature(candidates, params, signature, config.auth_token):
        raise Forbidden(
            "The X-Twilio-Signature is missing or invalid.", error_code="INVALID_SIGNATURE"
        )
    return await run_in_threadpool(_apply, session, parse_status_callback(dict(params)))


async def _vonage_params(request: Request) -> dict[str, str]:
    params = {key: value for key, value in request.query_params.items()}
    if request.method == "POST":
        if request.headers.get("content-type", "").startswith("application/json"):
            body = jsontext.loads(await request.body() or b"{}", what="The receipt")
            if isinstance(body, dict):
                params.update({str(k): str(v) for k, v in body.items() if v is not None})
        else:
            form = await request.form()
            params.update({key: str(value) for key, value in form.items()})
    return params


@router.api_route("/api/v1/sms/receipts/vonage", methods=["GET", "POST"], include_in_schema=False)
async def vonage_delivery_receipt(
    request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Vonage's delivery receipt (GET query, POST form or JSON): authenticated, then recorded."""
    url = await run_in_threadpool(_sms_url_for, session, settings, "vonage")
    config = VonageConfig.from_url(url)
    params = await _vonage_params(request)
    token = params.pop("token", None)
    if not check_receipt_auth(params, token, config):
        raise Forbidden(
            "The receipt carries neither passpost's token nor a valid signature.",
            error_code="INVALID_SIGNATURE",
        )
    return await run_in_threadpool(_apply, session, parse_delivery_receipt(params))
