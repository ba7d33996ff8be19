"""SMS delivery receipt webhooks (Twilio, Vonage): authenticated, then recorded in the ledger.

The providers' formats and signatures are ``passpost.channels``'; what a receipt does to a
delivery is the ledger's, so the routes live here and channels never import the ledger.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from passpost import jsontext
from passpost.channels import service
from passpost.channels.base import Receipt
from passpost.channels.sms import provider_scheme
from passpost.channels.sms.twilio import RECEIPT_PATH as TWILIO_PATH
from passpost.channels.sms.twilio import (
    TwilioConfig,
    parse_status_callback,
    validate_twilio_signature,
)
from passpost.channels.sms.vonage import VonageConfig, check_receipt_auth, parse_delivery_receipt
from passpost.config import Settings
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution.service import apply_receipt
from passpost.errors import Forbidden, NotFound

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])


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
