"""The original API's mail configuration fields ↔ ``SmtpConfig``."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from passpost.channels.email import Security, SmtpConfig
from passpost.channels.schemas import MASK, MailConfigIn
from passpost.errors import BadRequest

_PROTOCOLS = ("SMTP", "SMTPS", "SMTP/SMTPS")
_NONE = ("", "NONE", "PLAIN")
_STARTTLS = ("TLS", "STARTTLS")
_SSL = ("SSL",)
_EITHER = ("TLS/SSL", "SSL/TLS")  # the original's sample value: decided by the port
_TRUST_ALL = "mail.smtp.ssl.trust"  # JavaMail's key; "*" trusts any certificate
_CA_FILE = "passpost.tls.caFile"


def resolve_security(protocol: str, security_mode: str, port: int) -> Security:
    """The transport security that ``protocol`` + ``securityMode`` mean (else ``BadRequest``)."""
    proto = protocol.strip().upper()
    mode = security_mode.strip().upper()
    if proto not in _PROTOCOLS:
        raise BadRequest(
            "Only SMTP/SMTPS protocols are allowed.", error_code="INVALID_MAIL_PROTOCOL"
        )
    if proto == "SMTPS" or mode in _SSL:
        return "ssl"
    if mode in _STARTTLS:
        return "starttls"
    if mode in _EITHER:
        return "ssl" if port == 465 else "starttls"
    if mode in _NONE:
        return "ssl" if proto == "SMTP/SMTPS" and port == 465 else "none"
    raise BadRequest(
        "Only SSL/TLS security modes are supported (or an empty securityMode for none).",
        error_code="INVALID_SECURITY_MODE",
    )


def _valid_email(text: str) -> bool:
    try:
        address = Address(addr_spec=text.strip())
    except (ValueError, IndexError, HeaderParseError):
        return False
    return bool(address.username and "." in address.domain)


def validate_mail_config(
    data: MailConfigIn, *, stored_password: str | None
) -> tuple[dict[str, Any], str | None]:
    """Check a posted mail configuration; return its stored properties and the password.

    A password that is absent, empty or the mask keeps ``stored_password``.
    """
    if not 0 < data.port < 65536:
        raise BadRequest(f"Port {data.port} is out of range.", error_code="INVALID_MAIL_PORT")
    if not _valid_email(data.defaultSenderId):
        raise BadRequest("Default sender ID is not a valid email.", error_code="INVALID_SENDER")
    resolve_security(data.protocol, data.securityMode, data.port)
    user = (data.authUser or "").strip()
    posted = data.authPwd if data.authPwd not in (None, "", MASK) else None
    password = posted if posted is not None else stored_password
    if data.authRequired and not user:
        raise BadRequest(
            "authUser is required when authRequired is true.", error_code="MISSING_AUTH_USER"
        )
    if data.authRequired and not password:
        raise BadRequest(
            "authPwd is required when authRequired is true.", error_code="MISSING_AUTH_PASSWORD"
        )
    properties = data.model_dump(exclude={"authPwd"})
    properties["host"] = data.host.strip()
    properties["authUser"] = user
    properties["defaultSenderId"] = data.defaultSenderId.strip()
    return properties, password if data.authRequired else None


def smtp_config_from_fields(
    properties: dict[str, Any], password: str | None, *, concurrency: int
) -> SmtpConfig:
    """The ``SmtpConfig`` a stored mail configuration describes."""
    port = int(properties["port"])
    custom = {p["configKey"]: p.get("configValue") for p in properties.get("customProps", [])}
    auth = bool(properties.get("authRequired"))
    return SmtpConfig(
        host=properties["host"],
        port=port,
        security=resolve_security(
            properties.get("protocol", "SMTP"), properties.get("securityMode", ""), port
        ),
        username=(properties.get("authUser") or None) if auth else None,
        password=password if auth else None,
        default_sender=properties["defaultSenderId"],
        default_sender_name=properties.get("defaultSenderName") or None,
        concurrency=concurrency,
        verify_tls=(custom.get(_TRUST_ALL) or "").strip() != "*",
        ca_file=custom.get(_CA_FILE) or None,
    )


def fields_from_smtp_config(config: SmtpConfig) -> dict[str, Any]:
    """The original API's fields describing an ``SmtpConfig`` (the password masked)."""
    mode = {"none": "", "starttls": "TLS", "ssl": "SSL"}[config.security]
    custom = []
    if not config.verify_tls:
        custom.append({"configKey": _TRUST_ALL, "configValue": "*"})
    if config.ca_file:
        custom.append({"configKey": _CA_FILE, "configValue": config.ca_file})
    return {
        "protocol": "SMTPS" if config.security == "ssl" else "SMTP",
        "host": config.host,
        "port": config.port,
        "defaultSenderId": config.default_sender,
        "defaultSenderName": config.default_sender_name,
        "securityMode": mode,
        "authRequired": bool(config.username),
        "authUser": config.username or "",
        "authPwd": MASK if config.password else "",
        "unsubscribeAllowed": False,
        "customProps": custom,
    }
