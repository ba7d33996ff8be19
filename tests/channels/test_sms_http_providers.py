"""Twilio and Vonage providers against local servers speaking their documented wire formats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from passpost.channels.base import PermanentError, SendResult, SmsMessage, TransientError
from passpost.channels.phone import InvalidPhoneNumber
from passpost.channels.sms import make_sms_provider, provider_scheme
from passpost.channels.sms.log import LogProvider
from passpost.channels.sms.twilio import TwilioConfig, parse_status_callback, twilio_signature
from passpost.channels.sms.vonage import (
    VonageConfig,
    check_receipt_auth,
    parse_delivery_receipt,
    receipt_token,
    vonage_signature,
)
from tests.channels.provider_peers import (
    TWILIO_SID,
    TWILIO_TOKEN,
    VONAGE_KEY,
    VONAGE_SECRET,
    ProviderPeer,
    provider_peer,
)
from tests.support.net import free_port

PUBLIC = "https://pp.example"


@pytest.fixture
def peer() -> Iterator[ProviderPeer]:
    with provider_peer() as running:
        yield running


def _send(url: str, *messages: SmsMessage, region: str = "US") -> list[Any]:
    async def run() -> list[Any]:
        provider = make_sms_provider(url, public_url=PUBLIC, default_region=region)
        try:
            return list(
                await asyncio.gather(*(provider.send(m) for m in messages), return_exceptions=True)
            )
        finally:
            await provider.aclose()

    return asyncio.run(run())


def _twilio_url(
    peer: ProviderPeer, token: str = TWILIO_TOKEN, sender: str = "from=%2B14155550000"
) -> str:
    return f"twilio://{TWILIO_SID}:{token}@?{sender}&api_base={peer.base}"


def test_twilio_send_posts_the_documented_form_and_returns_the_sid(peer: ProviderPeer) -> None:
    [result] = _send(
        _twilio_url(peer), SmsMessage(key="delivery-1", to="(415) 555-2671", text="Hi ✈")
    )
    assert isinstance(result, SendResult)
    assert result.provider_message_id is not None and result.provider_message_id.startswith("SM")
    [request] = peer.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert request.form == {
        "To": "+14155552671",
        "From": "+14155550000",
        "Body": "Hi ✈",
        "StatusCallback": f"{PUBLIC}/api/v1/sms/receipts/twilio",
    }


def test_twilio_messaging_service(peer: ProviderPeer) -> None:
    url = _twilio_url(peer, sender="messagingServiceSid=MG0123")
    [result] = _send(url, SmsMessage(key="k", to="+14155552671", text="x"))
    assert result.detail == "twilio accepted"
    assert peer.requests[0].form["MessagingServiceSid"] == "MG0123"
    assert "From" not in peer.requests[0].form


@pytest.mark.parametrize(
    ("to", "kind", "reason"),
    [
        (
            "+14155552001",
            PermanentError,
            "Twilio error 21211: The 'To' number +14155552001 is not a valid phone number."
            " (HTTP 400)",
        ),
        ("+14155552002", TransientError, "Twilio error 20429: Too Many Requests (HTTP 429)"),
        (
            "+14155552003",
            TransientError,
            "Twilio error 20500: An internal server error has occurred (HTTP 500)",
        ),
        (
            "+14155552004",
            PermanentError,
            "Twilio error 21610: Attempt to send to unsubscribed recipient (HTTP 400)",
        ),
        (
            "+14155552005",
            TransientError,
            "Twilio error 21611: This 'From' number has exceeded the maximum number of queued"
            " messages (HTTP 400)",
        ),
    ],
)
def test_twilio_errors_are_classified_with_the_error_body_kept(
    peer: ProviderPeer, to: str, kind: type[Exception], reason: str
) -> None:
    [result] = _send(_twilio_url(peer), SmsMessage(key="k", to=to, text="x"))
    assert type(result) is kind
    assert result.reason == reason


def test_twilio_bad_credentials_are_transient(peer: ProviderPeer) -> None:
    [result] = _send(
        _twilio_url(peer, token="wrong"), SmsMessage(key="k", to="+14155552671", text="x")
    )
    assert isinstance(result, TransientError)
    assert result.reason == "Twilio error 20003: Authenticate (HTTP 401)"


def test_twilio_unreachable_is_transient() -> None:
    url = f"twilio://{TWILIO_SID}:{TWILIO_TOKEN}@?from=%2B14155550000&api_base=http://127.0.0.1:{free_port()}"
    [result] = _send(url, SmsMessage(key="k", to="+14155552671", text="x"))
    assert isinstance(result, TransientError)
    assert result.reason.startswith("Twilio unreachable (ConnectError)")


def test_invalid_number_is_rejected_before_any_request(peer: ProviderPeer) -> None:
    [result] = _send(_twilio_url(peer), SmsMessage(key="k", to="+1555", text="x"))
    assert isinstance(result, InvalidPhoneNumber)
    assert isinstance(result, PermanentError)
    assert "'+1555' is invalid" in result.reason
    assert peer.requests == []


def test_vonage_send_posts_the_documented_form(peer: ProviderPeer) -> None:
    url = f"vonage://{VONAGE_KEY}:{VONAGE_SECRET}@?from=PassPost&api_base={peer.base}"
    [result] = _send(url, SmsMessage(key="delivery-9", to="+4915123456789", text="Your pass"))
    assert isinstance(result, SendResult)
    assert result.detail == "vonage 1 part(s)"
    form = peer.requests[0].form
    assert peer.requests[0].path == "/sms/json"
    callback = form.pop("callback")
    assert form == {
        "api_key": VONAGE_KEY,
        "api_secret": VONAGE_SECRET,
        "from": "PassPost",
        "to": "4915123456789",
        "text": "Your pass",
        "client-ref": "delivery-9",
        "status-report-req": "1",
    }
    parts = urlsplit(callback)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PUBLIC}/api/v1/sms/receipts/vonage"
    assert parse_qs(parts.query) == {"token": [receipt_token(VONAGE_KEY, VONAGE_SECRET)]}


def test_vonage_unicode_and_long_texts(peer: ProviderPeer) -> None:
    url = f"vonage://{VONAGE_KEY}:{VONAGE_SECRET}@?from=PassPost&api_base={peer.base}"
    greek, latin = "Η κάρτα επιβίβασής σας", "€ [x] {y} ~ ^ | é " * 20
    first, second = _send(
        url,
        SmsMessage(key="a", to="+4915123456789", text=greek),
        SmsMessage(key="b", to="+4915123456780", text=latin),
    )
    by_ref = {r.form["client-ref"]: r.form for r in peer.requests}
    assert by_ref["a"]["type"] == "unicode"
    assert "type" not in by_ref["b"]  # GSM 03.38, extension table included
    assert first.detail == "vonage 1 part(s)"
    assert second.detail == "vonage 3 part(s)"


@pytest.mark.parametrize(
    ("to", "kind", "reason"),
    [
        (
            "+14155552001",
            TransientError,
            "Vonage status 1: Throughput Rate Exceeded - please wait [ 30 ] and retry",
        ),
        ("+14155552002", PermanentError, "Vonage status 3: Invalid to address"),
        ("+14155552003", PermanentError, "Vonage status 6: Unroutable message - rejected"),
        ("+14155552004", PermanentError, "Vonage status 7: Number barred."),
        ("+14155552005", TransientError, "Vonage status 5: Internal Error"),
        ("+14155552006", TransientError, "Vonage status 9: Partner quota exceeded"),
    ],
)
def test_vonage_statuses_are_classified(
    peer: ProviderPeer, to: str, kind: type[Exception], reason: str
) -> None:
    url = f"vonage://{VONAGE_KEY}:{VONAGE_SECRET}@?from=PassPost&api_base={peer.base}"
    [result] = _send(url, SmsMessage(key="k", to=to, text="x"))
    assert type(result) is kind
    assert result.reason == reason


def test_vonage_bad_credentials_and_http_failures(peer: ProviderPeer) -> None:
    url = f"vonage://{VONAGE_KEY}:nope@?from=PassPost&api_base={peer.base}"
    [bad_key] = _send(url, SmsMessage(key="k", to="+14155552671", text="x"))
    assert isinstance(bad_key, TransientError)
    assert bad_key.reason == "Vonage status 4: Bad Credentials"
    peer.fail_http = 503
    good = f"vonage://{VONAGE_KEY}:{VONAGE_SECRET}@?from=PassPost&api_base={peer.base}"
    [unavailable] = _send(good, SmsMessage(key="k", to="+14155552671", text="x"))
    assert isinstance(unavailable, TransientError)
    assert unavailable.reason.startswith("Vonage HTTP 503")


def test_log_provider_writes_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sms.jsonl"
    results = _send(
        f"log://{path}",
        *(SmsMessage(key=f"d{i}", to="030 1234567", text=f"pass {i} ✈") for i in range(20)),
        region="DE",
    )
    assert [r.provider_message_id for r in results] == [f"log-d{i}" for i in range(20)]
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(f"d{i}" for i in range(20))
    assert {line["to"] for line in lines} == {"+49301234567"}
    assert lines[0]["text"].endswith("✈")


def test_factory_schemes(tmp_path: Path) -> None:
    assert provider_scheme("NEXMO://k:s@?from=x") == "vonage"
    assert isinstance(make_sms_provider(f"log://{tmp_path}/x.jsonl"), LogProvider)
    with pytest.raises(ValueError, match="Unknown SMS provider 'sms'"):
        make_sms_provider("sms://x")
    with pytest.raises(ValueError, match="from= or messagingServiceSid="):
        TwilioConfig.from_url("twilio://AC1:tok@")
    with pytest.raises(ValueError, match="API_KEY:API_SECRET"):
        VonageConfig.from_url("vonage://@?from=x")


def test_twilio_signature_matches_the_documented_example() -> None:
    # The canonical example of Twilio's webhook security documentation.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params.items(), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_status_callback_parsing() -> None:
    delivered = parse_status_callback({"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert delivered is not None and delivered.delivered and delivered.provider_message_id == "SM1"
    failed = parse_status_callback(
        {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert (
        failed is not None
        and not failed.delivered
        and failed.detail == "twilio undelivered, error 30003"
    )
    assert parse_status_callback({"MessageSid": "SM3", "MessageStatus": "sent"}) is None


def test_vonage_signature_matches_the_sdk_test_vector() -> None:
    # The vector of Vonage's own SDK tests (md5hash, secret "secret").
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert vonage_signature(params, "secret") == "6af838ef94998832dbfc29020b564830"
    config = VonageConfig.from_url("vonage://k:s@?from=x&signature_secret=secret")
    assert check_receipt_auth({**params, "sig": "6AF838EF94998832DBFC29020B564830"}, None, config)
    assert not check_receipt_auth({**params, "sig": "0" * 32}, None, config)
    assert check_receipt_auth(params, receipt_token("k", "s"), config)
    assert not check_receipt_auth(params, "forged", config)


def test_vonage_delivery_receipt_parsing() -> None:
    receipt = parse_delivery_receipt(
        {"messageId": "0A00", "status": "delivered", "err-code": "0", "msisdn": "447700900000"}
    )
    assert receipt is not None and receipt.delivered and receipt.detail == "vonage delivered"
    expired = parse_delivery_receipt({"messageId": "0A01", "status": "expired", "err-code": "5"})
    assert (
        expired is not None
        and not expired.delivered
        and expired.detail == "vonage expired, err-code 5"
    )
    assert parse_delivery_receipt({"messageId": "0A02", "status": "buffered"}) is None
