"""Local HTTP servers speaking Twilio's Messages API and Vonage's SMS API wire formats.

Request and response shapes follow the providers' documentation: Twilio answers 201 with
the Message resource or an error body ``{code, message, more_info, status}``; Vonage
answers 200 with ``{"message-count", "messages": [{"status", ...}]}`` where a non-zero
``status`` (with ``error-text``) is the failure.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.support.net import free_port

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-0123456789"
VONAGE_KEY = "abcd1234"
VONAGE_SECRET = "Vonage-Secret-42"

# Scripted Twilio failures, keyed by the To number (valid numbers, so passpost sends them).
TWILIO_ERRORS: dict[str, tuple[int, int, str]] = {
    "+14155552001": (400, 21211, "The 'To' number +14155552001 is not a valid phone number."),
    "+14155552002": (429, 20429, "Too Many Requests"),
    "+14155552003": (500, 20500, "An internal server error has occurred"),
    "+14155552004": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+14155552005": (
        400,
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}
# Scripted Vonage per-message statuses, keyed by the "to" digits.
VONAGE_ERRORS: dict[str, tuple[str, str]] = {
    "14155552001": ("1", "Throughput Rate Exceeded - please wait [ 30 ] and retry"),
    "14155552002": ("3", "Invalid to address"),
    "14155552003": ("6", "Unroutable message - rejected"),
    "14155552004": ("7", "Number barred."),
    "14155552005": ("5", "Internal Error"),
    "14155552006": ("9", "Partner quota exceeded"),
}


@dataclass
class Recorded:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class ProviderPeer:
    port: int
    requests: list[Recorded] = field(default_factory=list)
    fail_http: int | None = None  # answer every request with this HTTP status

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _twilio_message(form: dict[str, str]) -> dict[str, Any]:
    sid = "SM" + secrets.token_hex(16)
    return {
        "account_sid": TWILIO_SID,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": None,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if form.get("MessagingServiceSid") else "queued",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}/Media.json"
        },
        "to": form.get("To"),
        "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
    }


def _twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _vonage_response(form: dict[str, str]) -> dict[str, Any]:
    if form.get("api_key") != VONAGE_KEY or form.get("api_secret") != VONAGE_SECRET:
        return {
            "message-count": "1",
            "messages": [{"status": "4", "error-text": "Bad Credentials"}],
        }
    for required in ("from", "to", "text"):
        if not form.get(required):
            return {
                "message-count": "1",
                "messages": [{"status": "2", "error-text": f"Missing {required} param"}],
            }
    to = form["to"]
    if to in VONAGE_ERRORS:
        status, text = VONAGE_ERRORS[to]
        return {
            "message-count": "1",
            "messages": [{"to": to, "status": status, "error-text": text}],
        }
    limit = 70 if form.get("type") == "unicode" else 160
    parts = 1 if len(form["text"]) <= limit else -(-len(form["text"]) // (limit - 7))
    messages = [
        {
            "to": to,
            "message-id": secrets.token_hex(8).upper(),
            "status": "0",
            "remaining-balance": "3.14159265",
            "message-price": "0.03330000",
            "network": "310004",
            "client-ref": form.get("client-ref", ""),
        }
        for _ in range(parts)
    ]
    return {"message-count": str(parts), "messages": messages}


class _Handler(BaseHTTPRequestHandler):
    peer: ProviderPeer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        self.peer.requests.append(Recorded(self.path, form, dict(self.headers.items())))
        if self.peer.fail_http is not None:
            self._reply(self.peer.fail_http, {"error": "scripted failure"})
        elif self.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
            self._twilio(form)
        elif self.path == "/sms/json":
            self._reply(200, _vonage_response(form))
        else:
            self._reply(404, _twilio_error(404, 20404, "The requested resource was not found"))

    def _twilio(self, form: dict[str, str]) -> None:
        expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._reply(401, _twilio_error(401, 20003, "Authenticate"))
            return
        if not form.get("To") or not form.get("Body"):
            self._reply(400, _twilio_error(400, 21604, "A 'To' phone number is required."))
            return
        if form["To"] in TWILIO_ERRORS:
            status, code, message = TWILIO_ERRORS[form["To"]]
            self._reply(status, _twilio_error(status, code, message))
            return
        self._reply(201, _twilio_message(form))


@contextmanager
def provider_peer() -> Iterator[ProviderPeer]:
    """Run the fake provider API on a free loopback port."""
    peer = ProviderPeer(port=free_port())
    handler = type("Handler", (_Handler,), {"peer": peer})
    server = ThreadingHTTPServer(("127.0.0.1", peer.port), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
