"""Twilio: the Messages REST API, status callbacks and ``X-Twilio-Signature`` validation.

URL: ``twilio://ACCOUNT_SID:AUTH_TOKEN@?from=+15550001`` (or ``messagingServiceSid=MG...``);
options ``api_base`` (default ``https://api.twilio.com``), ``status_callback`` (default
``<public_url>/api/v1/sms/receipts/twilio``), ``timeout`` (seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from passpost.channels.base import Receipt, SendResult, SmsMessage
from passpost.channels.phone import normalize_phone
from passpost.channels.sms.common import api_base_from, http_status_error, url_options
from passpost.channels.sms.http_provider import HttpSmsProvider

DEFAULT_API_BASE = "https://api.twilio.com"
RECEIPT_PATH = "/api/v1/sms/receipts/twilio"

# Error codes that describe a passing condition rather than this message.
_TRANSIENT_CODES = frozenset({20429, 20500, 20503, 21611, 30001})
# Twilio answers 401/403 when passpost's credentials or account are wrong: not the message.
_ACCOUNT_STATUSES = frozenset({401, 403})
_DELIVERED = frozenset({"delivered", "read"})
_FAILED = frozenset({"undelivered", "failed", "canceled"})


@dataclass(frozen=True)
class TwilioConfig:
    """Credentials and options parsed from a ``twilio://`` URL."""

    account_sid: str
    auth_token: str
    sender: str | None
    messaging_service_sid: str | None
    api_base: str = DEFAULT_API_BASE
    status_callback: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, *, public_url: str | None = None) -> TwilioConfig:
        """Parse a ``twilio://`` URL; ``ValueError`` names what is missing."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "twilio":
            raise ValueError("Twilio URL must start with twilio://")
        options = url_options(url)
        sid = unquote(parts.username or "")
        token = unquote(parts.password or "")
        if not sid or not token:
            raise ValueError("Twilio URL needs ACCOUNT_SID:AUTH_TOKEN@")
        sender = options.get("from") or None
        service = options.get("messagingservicesid") or None
        if not sender and not service:
            raise ValueError("Twilio URL needs from= or messagingServiceSid=")
        callback = options.get("status_callback") or options.get("statuscallback")
        if not callback and public_url:
            callback = public_url.rstrip("/") + RECEIPT_PATH
        return cls(
            account_sid=sid,
            auth_token=token,
            sender=sender,
            messaging_service_sid=service,
            api_base=api_base_from(url, options, DEFAULT_API_BASE),
            status_callback=callback or None,
            timeout=float(options.get("timeout", 10.0)),
        )


class TwilioProvider(HttpSmsProvider[TwilioConfig]):
    """``SmsProvider`` over Twilio's Messages API; receipts arrive at the status callback."""

    name = "twilio"
    label = "Twilio"
    config_type = TwilioConfig

    def _auth(self) -> tuple[str, str]:
        """Twilio authenticates every request with the account SID and auth token."""
        return (self.config.account_sid, self.config.auth_token)

    async def send(self, message: SmsMessage) -> SendResult:
        """Create one Message; its ``sid`` is the provider message id."""
        config = self.config
        form = {"To": normalize_phone(message.to, self.default_region), "Body": message.text}
        if config.messaging_service_sid:
            form["MessagingServiceSid"] = config.messaging_service_sid
        if config.sender:
            form["From"] = config.sender
        if config.status_callback:
            form["StatusCallback"] = config.status_callback
        path = f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        response, body = await self._post_form(path, form)
        if response.status_code in (200, 201) and body.get("sid"):
            status = body.get("status") or "queued"
            return SendResult(provider_message_id=str(body["sid"]), detail=f"twilio {status}")
        code = body.get("code")
        text = body.get("message") or response.reason_phrase or "no error message"
        reason = f"Twilio error {code}: {text} (HTTP {response.status_code})"
        if code is None:
            reason = f"Twilio HTTP {response.status_code}: {text}"
        transient = code in _TRANSIENT_CODES or response.status_code in _ACCOUNT_STATUSES
        raise http_status_error(response.status_code, reason, transient=transient)


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` of a request: base64 HMAC-SHA1 over URL + sorted params."""
    pairs = sorted(set(params))
    payload = url + "".join(key + value for key, value in pairs)
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def validate_twilio_signature(
    urls: Iterable[str], params: Iterable[tuple[str, str]], signature: str, auth_token: str
) -> bool:
    """True when ``signature`` matches for one of the candidate URLs (public or as received)."""
    if not signature or not auth_token:
        return False
    pairs = list(params)
    # Bytes, not str: compare_digest raises on a non-ASCII str, and the header is the client's.
    given = signature.encode("utf-8", "surrogateescape")
    return any(
        hmac.compare_digest(twilio_signature(url, pairs, auth_token).encode(), given)
        for url in urls
    )


def parse_status_callback(form: Mapping[str, str]) -> Receipt | None:
    """A ``Receipt`` from a status callback, or ``None`` for a non-final status (``sent``…)."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or (status not in _DELIVERED and status not in _FAILED):
        return None
    error = form.get("ErrorCode")
    detail = f"twilio {status}" + (f", error {error}" if error else "")
    return Receipt(provider_message_id=sid, delivered=status in _DELIVERED, detail=detail)
