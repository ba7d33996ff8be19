"""SMS providers behind one interface, one module each, chosen by ``PASSPOST_SMS_URL``.

``twilio://`` (Messages API), ``vonage://``/``nexmo://`` (SMS API), ``smpp://`` (SMPP 3.4)
and ``log://`` (a JSON-lines file for development).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from passpost.channels.base import ReceiptCallback, SmsProvider
from passpost.config import get_settings

SCHEMES = ("twilio", "vonage", "nexmo", "smpp", "log")


def provider_scheme(url: str) -> str:
    """The provider name of an SMS URL (``nexmo`` is reported as ``vonage``)."""
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown SMS provider {scheme!r}; use one of {', '.join(SCHEMES)}")
    return "vonage" if scheme == "nexmo" else scheme


def check_sms_url(url: str) -> None:
    """Parse an SMS URL as its provider would, without building it; ``ValueError`` if unusable."""
    scheme = provider_scheme(url)
    if scheme == "twilio":
        from passpost.channels.sms.twilio import TwilioConfig

        TwilioConfig.from_url(url)
    elif scheme == "vonage":
        from passpost.channels.sms.vonage import VonageConfig

        VonageConfig.from_url(url)
    elif scheme == "log":
        from passpost.channels.sms.log import log_path_from_url

        log_path_from_url(url)
    else:
        from passpost.channels.sms.smpp import SmppConfig

        SmppConfig.from_url(url)


def make_sms_provider(
    url: str,
    *,
    on_receipt: ReceiptCallback | None = None,
    public_url: str | None = None,
    default_region: str | None = None,
    **opts: Any,
) -> SmsProvider:
    """Build the provider an SMS URL names; ``ValueError`` when the URL is unusable.

    ``on_receipt`` is called by providers that receive receipts on their own connection
    (SMPP); Twilio and Vonage receipts arrive at passpost's webhooks instead, whose
    address is derived from ``public_url`` (default: ``PASSPOST_PUBLIC_URL``). Numbers that
    are not E.164 are normalised with ``default_region`` (default:
    ``PASSPOST_SMS_DEFAULT_REGION``) or rejected. Other ``opts`` go to the provider (SMPP).
    """
    scheme = provider_scheme(url)
    settings = get_settings()
    public_url = public_url or settings.public_base
    region = default_region or settings.sms_default_region
    if scheme == "twilio":
        from passpost.channels.sms.twilio import TwilioProvider

        return TwilioProvider.from_url(
            url, on_receipt=on_receipt, public_url=public_url, default_region=region
        )
    if scheme == "vonage":
        from passpost.channels.sms.vonage import VonageProvider

        return VonageProvider.from_url(
            url, on_receipt=on_receipt, public_url=public_url, default_region=region
        )
    if scheme == "log":
        from passpost.channels.sms.log import LogProvider

        return LogProvider.from_url(url, on_receipt=on_receipt, default_region=region)
    from passpost.channels.sms.smpp import SmppProvider

    provider: SmsProvider = SmppProvider.from_url(
        url, on_receipt=on_receipt, default_region=region, **opts
    )
    return provider
