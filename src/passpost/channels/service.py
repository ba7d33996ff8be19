"""Channel configuration: stored (API) settings override the environment (SPEC §9).

Plain functions taking the caller's session; nothing here commits.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost import secrets
from passpost.channels import mailconfig, smsconfig
from passpost.channels.email import SmtpConfig
from passpost.channels.models import ChannelConfig
from passpost.channels.schemas import MASK, MailConfigIn, SmsConfigIn
from passpost.config import Settings
from passpost.errors import BadRequest

log = logging.getLogger(__name__)

EMAIL = "EMAIL"
SMS = "SMS"


def get_stored(session: Session, channel: str) -> ChannelConfig | None:
    """The stored configuration of ``channel`` (``EMAIL``/``SMS``), if any."""
    return session.scalars(select(ChannelConfig).where(ChannelConfig.channel == channel)).first()


def stored_secrets(row: ChannelConfig | None) -> dict[str, str]:
    """The decrypted secrets of a stored configuration."""
    if row is None or not row.secrets:
        return {}
    data = json.loads(secrets.decrypt(row.secrets))
    return {str(k): str(v) for k, v in data.items()}


def _save(
    session: Session,
    *,
    channel: str,
    provider: str,
    properties: dict[str, Any],
    secret_values: dict[str, str],
    updated_by: str | None,
) -> ChannelConfig:
    row = get_stored(session, channel)
    if row is None:
        row = ChannelConfig(channel=channel)
        session.add(row)
    row.provider = provider
    row.properties = properties
    row.secrets = secrets.encrypt(json.dumps(secret_values)) if secret_values else None
    row.updated_by = updated_by
    session.flush()
    return row


def delete_config(session: Session, *, channel: str) -> bool:
    """Forget the stored configuration of ``channel`` (the environment applies again)."""
    row = get_stored(session, channel)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def save_mail_config(
    session: Session, *, data: MailConfigIn, updated_by: str | None = None
) -> ChannelConfig:
    """Validate and store a mail configuration; an omitted or masked password is kept."""
    current = get_stored(session, EMAIL)
    properties, password = mailconfig.validate_mail_config(
        data, stored_password=stored_secrets(current).get("authPwd")
    )
    return _save(
        session,
        channel=EMAIL,
        provider="SMTP",
        properties=properties,
        secret_values={"authPwd": password} if password else {},
        updated_by=updated_by,
    )


def save_sms_config(
    session: Session, *, data: SmsConfigIn, data_dir: Path, updated_by: str | None = None
) -> ChannelConfig:
    """Validate and store an SMS configuration; omitted or masked secrets are kept."""
    kind = smsconfig.provider_kind(data.provider, data.protocol)
    current = get_stored(session, SMS)
    same_provider = current is not None and current.properties.get("kind") == kind
    kept = stored_secrets(current) if same_provider else {}
    items: list[dict[str, str | None]] = []
    secret_values: dict[str, str] = {}
    for prop in data.properties:
        value = (prop.value or "").strip()
        if smsconfig.is_secret(prop.key):
            if value in ("", MASK):
                value = kept.get(smsconfig.squash(prop.key), "")
            if value:
                secret_values[smsconfig.squash(prop.key)] = value
            items.append({"key": prop.key, "value": None})
        else:
            items.append({"key": prop.key, "value": value})
    values = _values(items, secret_values)
    smsconfig.max_chars(values)
    if smsconfig.unsendable_reason(kind) is None:
        smsconfig.sms_url(kind, values, data_dir=data_dir)  # BadRequest names what is wrong
    properties = {
        "kind": kind,
        "provider": data.provider.strip().upper(),
        "protocol": (data.protocol or ("SMPP" if kind == "smpp" else "HTTP")).upper(),
        "inboundSecurityEnabled": data.inboundSecurityEnabled,
        "inboundEnabled": data.inboundEnabled,
        "items": items,
    }
    return _save(
        session,
        channel=SMS,
        provider=kind,
        properties=properties,
        secret_values=secret_values,
        updated_by=updated_by,
    )


def _values(items: list[dict[str, str | None]], secret_values: dict[str, str]) -> dict[str, str]:
    values = {smsconfig.squash(str(i["key"])): str(i["value"] or "") for i in items}
    values.update(secret_values)
    return values


def _stored_sms(row: ChannelConfig) -> tuple[str, dict[str, str]]:
    return str(row.properties["kind"]), _values(
        row.properties.get("items", []), stored_secrets(row)
    )


def effective_smtp_config(session: Session, settings: Settings) -> SmtpConfig | None:
    """The SMTP settings in force: the stored configuration, else ``PASSPOST_SMTP_URL``."""
    row = get_stored(session, EMAIL)
    if row is not None:
        password = stored_secrets(row).get("authPwd")
        return mailconfig.smtp_config_from_fields(
            row.properties, password, concurrency=settings.smtp_concurrency
        )
    if not settings.smtp_url:
        return None
    try:
        return SmtpConfig.from_url(
            settings.smtp_url,
            default_sender=settings.smtp_default_sender,
            concurrency=settings.smtp_concurrency,
        )
    except ValueError:
        log.exception("PASSPOST_SMTP_URL is invalid; the e-mail channel is off")
        return None


def effective_sms_url(session: Session, settings: Settings) -> str | None:
    """The SMS URL in force: built from the stored configuration, else ``PASSPOST_SMS_URL``."""
    row = get_stored(session, SMS)
    if row is not None:
        kind, values = _stored_sms(row)
        if smsconfig.unsendable_reason(kind) is not None:
            return None
        try:
            return smsconfig.sms_url(kind, values, data_dir=settings.data_dir)
        except BadRequest as exc:
            # Stored before a rule existed (a LOG path outside the data directory): the
            # channel is off, and deliveries say it is not configured, rather than obey it.
            log.error("The stored SMS configuration is not used: %s", exc.message)
            return None
    return settings.sms_url or None


def _sendable(kind: str) -> dict[str, Any]:
    reason = smsconfig.unsendable_reason(kind)
    return {"sendable": False, "warning": reason} if reason else {"sendable": True}


def sms_unavailable_reason(session: Session, settings: Settings) -> str:
    """Why SMS cannot be sent now (when ``effective_sms_url`` is None)."""
    row = get_stored(session, SMS)
    reason = smsconfig.unsendable_reason(str(row.properties.get("kind"))) if row else None
    return reason or "SMS channel is not configured (PASSPOST_SMS_URL or /api/v1/smsconfig)"


def effective_sms_max_chars(session: Session, settings: Settings) -> int:
    """The SMS length limit: the stored "Maximum Character Limit", else the setting."""
    row = get_stored(session, SMS)
    if row is not None:
        limit = smsconfig.max_chars(_stored_sms(row)[1])
        if limit is not None:
            return limit
    return settings.sms_max_chars


# The original's defaults for the attachment settings (shown when none were stored).
_MAIL_DEFAULTS: dict[str, Any] = {
    "supportedAttachmentFileTypes": (
        "pdf,xls,xlsx,csv,txt,doc,docx,ppt,pptx,pps,zip,rar,tar,gzip,log,jpeg,jpg,png"
    ),
    "maxSizeOfIndividualAttachmentInMB": 10.0,
    "maxSizeOfAllAttachmentsInMB": 10.0,
    "maxNumberOfAttachments": 4,
    "customProps": [],
    "unsubscribeAllowed": False,
}


def _with_defaults(view: dict[str, Any]) -> dict[str, Any]:
    for key, default in _MAIL_DEFAULTS.items():
        if view.get(key) is None:
            view[key] = default
    return view


def mail_config_view(session: Session, settings: Settings) -> dict[str, Any]:
    """``GET /api/v1/mailconfig``: the configuration in force, the password masked."""
    row = get_stored(session, EMAIL)
    if row is not None:
        view = _with_defaults(dict(row.properties))
        view["authPwd"] = MASK if stored_secrets(row).get("authPwd") else ""
        view["source"] = "api"
        return view
    config = effective_smtp_config(session, settings)
    if config is None:
        return {"source": "none", "configured": False}
    return _with_defaults({**mailconfig.fields_from_smtp_config(config), "source": "environment"})


def sms_config_view(session: Session, settings: Settings) -> dict[str, Any]:
    """``GET /api/v1/smsconfig``: the configuration in force, secrets masked."""
    row = get_stored(session, SMS)
    if row is not None:
        props = row.properties
        known = stored_secrets(row)
        properties = [
            {
                "key": item["key"],
                "value": item["value"]
                if item["value"] is not None
                else (MASK if known.get(smsconfig.squash(item["key"])) else ""),
            }
            for item in props.get("items", [])
        ]
        return {
            "protocol": props.get("protocol"),
            "provider": props.get("provider"),
            "inboundSecurityEnabled": props.get("inboundSecurityEnabled", True),
            "inboundEnabled": props.get("inboundEnabled", False),
            "properties": properties,
            "source": "api",
            **_sendable(str(props.get("kind"))),
        }
    if not settings.sms_url:
        return {"source": "none", "configured": False, "properties": []}
    try:
        provider, protocol, properties = smsconfig.properties_from_url(settings.sms_url)
    except ValueError as exc:
        return {"source": "environment", "configured": False, "error": str(exc), "properties": []}
    properties.append({"key": "Maximum Character Limit", "value": str(settings.sms_max_chars)})
    return {
        "protocol": protocol,
        "provider": provider,
        "inboundSecurityEnabled": True,
        "properties": properties,
        "source": "environment",
    }
