"""Vonage (Nexmo): the SMS API and its delivery-receipt webhook.

URL: ``vonage://API_KEY:API_SECRET@?from=PassPost`` (``nexmo://`` works too); options
``api_base`` (default ``https://rest.nexmo.com``), ``callback`` (default
``<public_url>/api/v1/sms/receipts/vonage?token=...``), ``signature_secret`` and
``signature_method`` (``md5hash``, ``md5``, ``sha1``, ``sha256``, ``sha512``) when the
account signs its webhooks, ``timeout``.

Receipts are authenticated twice over: the callback URL carries a token derived from the
API secret, and when a signature secret is configured the ``sig`` parameter is checked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

from passpost.channels.base import Receipt, SendResult, SmsMessage
from passpost.channels.phone import normalize_phone
from passpost.channels.sms.common import api_base_from, http_status_error, url_options
from passpost.channels.sms.gsm import is_gsm7
from passpost.channels.sms.http_provider import HttpSmsProvider

DEFAULT_API_BASE = "https://rest.nexmo.com"
RECEIPT_PATH = "/api/v1/sms/receipts/vonage"
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")

# SMS API per-message status codes (developer.vonage.com/api-errors/sms). Transient: the
# condition passes or is the account's, not the message's (throttled, internal error,
# credentials, no credit, too many binds, account barred or not enabled for HTTP).
_TRANSIENT_STATUS = frozenset({"1", "4", "5", "8", "9", "10", "11"})
_STATUS_TEXT = {
    "1": "Throttled",
    "2": "Missing Parameters",
    "3": "Invalid Parameters",
    "4": "Invalid Credentials",
    "5": "Internal Error",
    "6": "Invalid Message",
    "7": "Number Barred",
    "8": "Partner Account Barred",
    "9": "Partner Quota Violation",
    "10": "Too Many Existing Binds",
    "11": "Account Not Enabled For HTTP",
    "12": "Message Too Long",
    "14": "Invalid Signature",
    "15": "Invalid Sender Address",
    "22": "Invalid Network Code",
    "23": "Invalid Callback Url",
    "29": "Non-Whitelisted Destination",
    "32": "Signature And API Secret Disallowed",
    "33": "Number De-activated",
}
_FINAL_FAILED = frozenset({"failed", "expired", "rejected"})


@dataclass(frozen=True)
class VonageConfig:
    """Credentials and options parsed from a ``vonage://`` URL."""

    api_key: str
    api_secret: str
    sender: str
    api_base: str = DEFAULT_API_BASE
    callback: str | None = None
    signature_secret: str | None = None
    signature_method: str = "md5hash"
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, *, public_url: str | None = None) -> VonageConfig:
        """Parse a ``vonage://`` (or ``nexmo://``) URL; ``ValueError`` names what is missing."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("vonage", "nexmo"):
            raise ValueError("Vonage URL must start with vonage://")
        options = url_options(url)
        key = unquote(parts.username or "")
        secret = unquote(parts.password or "")
        if not key or not secret:
            raise ValueError("Vonage URL needs API_KEY:API_SECRET@")
        sender = options.get("from")
        if not sender:
            raise ValueError("Vonage URL needs from=")
        method = options.get("signature_method", "md5hash").lower()
        if method not in SIGNATURE_METHODS:
            choices = ", ".join(SIGNATURE_METHODS)
            raise ValueError(f"Vonage signature_method must be one of {choices}")
        callback = options.get("callback")
        if not callback and public_url:
            query = urlencode({"token": receipt_token(key, secret)})
            callback = f"{public_url.rstrip('/')}{RECEIPT_PATH}?{query}"
        return cls(
            api_key=key,
            api_secret=secret,
            sender=sender,
            api_base=api_base_from(url, options, DEFAULT_API_BASE),
            callback=callback or None,
            signature_secret=options.get("signature_secret") or None,
            signature_method=method,
            timeout=float(options.get("timeout", 10.0)),
        )


class VonageProvider(HttpSmsProvider[VonageConfig]):
    """``SmsProvider`` over the Vonage SMS API; receipts arrive at the webhook."""

    name = "vonage"
    label = "Vonage"
    config_type = VonageConfig

    async def send(self, message: SmsMessage) -> SendResult:
        """Send one text; the first part's ``message-id`` is the provider message id.

        A long text is split by Vonage; each part has its own id and receipt, and the
        first part's receipt decides the delivery.
        """
        config = self.config
        form = {
            "api_key": config.api_key,
            "api_secret": config.api_secret,
            "from": config.sender,
            # Vonage wants the E.164 digits without the "+".
            "to": normalize_phone(message.to, self.default_region).lstrip("+"),
            "text": message.text,
            "client-ref": message.key[:100],
            "status-report-req": "1",
        }
        if not is_gsm7(message.text):
            form["type"] = "unicode"
        if config.callback:
            form["callback"] = config.callback
        response, body = await self._post_form("/sms/json", form)
        parts = body.get("messages")
        if response.status_code != 200 or not isinstance(parts, list) or not parts:
            reason = f"Vonage HTTP {response.status_code}: {response.text[:200].strip()}"
            transient = response.status_code == 401  # credentials: the account, not the text
            raise http_status_error(response.status_code, reason, transient=transient)
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                text = part.get("error-text") or _STATUS_TEXT.get(status, "unknown status")
                reason = f"Vonage status {status}: {text}"
                raise http_status_error(400, reason, transient=status in _TRANSIENT_STATUS)
        first = str(parts[0].get("message-id", ""))
        return SendResult(provider_message_id=first or None, detail=f"vonage {len(parts)} part(s)")


def receipt_token(api_key: str, api_secret: str) -> str:
    """The secret token passpost puts in its receipt callback URL (derived, never stored)."""
    material = f"passpost-vonage-receipts:{api_key}".encode()
    return hmac.new(api_secret.encode(), material, hashlib.sha256).hexdigest()[:32]


def vonage_signature(params: Mapping[str, str], secret: str, method: str = "md5hash") -> str:
    """The ``sig`` of webhook parameters, as Vonage computes it (hex, lower case)."""
    payload = "".join(
        f"&{key}={str(value).replace('&', '_').replace('=', '_')}"
        for key, value in sorted(params.items())
        if key != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((payload + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), payload.encode(), method).hexdigest()


def check_receipt_auth(params: Mapping[str, str], token: str | None, config: VonageConfig) -> bool:
    """True when a receipt carries passpost's token or a valid Vonage signature."""
    expected = receipt_token(config.api_key, config.api_secret)
    # Bytes, not str: compare_digest raises on a non-ASCII str, and both values are the client's.
    if token and hmac.compare_digest(_utf8(token), _utf8(expected)):
        return True
    sig = params.get("sig")
    if config.signature_secret and sig:
        mine = vonage_signature(params, config.signature_secret, config.signature_method)
        return hmac.compare_digest(_utf8(mine), _utf8(sig.lower()))
    return False


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse_delivery_receipt(params: Mapping[str, str]) -> Receipt | None:
    """A ``Receipt`` from a delivery-receipt webhook, or ``None`` for a non-final status."""
    message_id = params.get("messageId")
    status = (params.get("status") or "").lower()
    if not message_id or (status != "delivered" and status not in _FINAL_FAILED):
        return None
    error = params.get("err-code")
    detail = f"vonage {status}" + (f", err-code {error}" if error and error != "0" else "")
    return Receipt(provider_message_id=message_id, delivered=status == "delivered", detail=detail)
